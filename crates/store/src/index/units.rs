//! UCUM units in canonical form (shared by the indexer, which stores canonical values, and
//! the stores, which canonicalise search values the same way), for the units a clinical server meets most: metric
//! prefixes of gram, litre, metre, second and mole, the common time units, and a few
//! customary ones. `5 mg` and `0.005 g` then compare equal in quantity search.

/// The UCUM system URI.
pub const UCUM: &str = "http://unitsofmeasure.org";

/// The factor to the canonical unit and the canonical unit, for a UCUM code.
pub fn canonical(code: &str) -> Option<(f64, &'static str)> {
    let special = match code {
        "min" => Some((60.0, "s")),
        "h" => Some((3600.0, "s")),
        "d" => Some((86_400.0, "s")),
        "wk" => Some((604_800.0, "s")),
        "[lb_av]" => Some((453.592_37, "g")),
        "[oz_av]" => Some((28.349_523_125, "g")),
        "[in_i]" => Some((0.0254, "m")),
        "[ft_i]" => Some((0.3048, "m")),
        "mm[Hg]" => Some((133.322_387_415, "Pa")),
        "%" => Some((0.01, "1")),
        _ => None,
    };
    if special.is_some() {
        return special;
    }
    // A ratio like mg/dL: canonicalise both sides.
    if let Some((num, den)) = code.split_once('/') {
        let (fn_, un) = canonical(num)?;
        let (fd, ud) = canonical(den)?;
        let unit: &'static str = RATIOS
            .iter()
            .find(|(n, d, _)| *n == un && *d == ud)
            .map(|(_, _, u)| *u)?;
        return Some((fn_ / fd, unit));
    }
    for base in ["g", "L", "l", "m", "s", "mol", "Pa"] {
        if let Some(prefix) = code.strip_suffix(base) {
            let factor = match prefix {
                "" => 1.0,
                "k" => 1e3,
                "h" => 1e2,
                "d" => 1e-1,
                "c" => 1e-2,
                "m" => 1e-3,
                "u" => 1e-6,
                "n" => 1e-9,
                "p" => 1e-12,
                _ => continue,
            };
            let unit = match base {
                "l" => "L",
                "g" => "g",
                "L" => "L",
                "m" => "m",
                "s" => "s",
                "mol" => "mol",
                _ => "Pa",
            };
            return Some((factor, unit));
        }
    }
    None
}

/// Canonical ratio units the indexer names.
const RATIOS: &[(&str, &str, &str)] = &[
    ("g", "L", "g/L"),
    ("mol", "L", "mol/L"),
    ("g", "g", "g/g"),
    ("m", "s", "m/s"),
    ("1", "s", "/s"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_ratios_and_customary_units() {
        assert_eq!(canonical("mg"), Some((1e-3, "g")));
        assert_eq!(canonical("kg"), Some((1e3, "g")));
        assert_eq!(canonical("min"), Some((60.0, "s")));
        let (f, u) = canonical("mg/dL").unwrap();
        assert!((f - 1e-2).abs() < 1e-12 && u == "g/L");
        assert_eq!(canonical("mmol/L").map(|c| c.1), Some("mol/L"));
        assert_eq!(canonical("furlong"), None);
    }
}
