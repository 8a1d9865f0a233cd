//! UCUM canonical units for quantity search, replicating the table the indexer uses
//! (`caduceus-index`'s `units` module) so that a search for `5|http://unitsofmeasure.org|mg`
//! compares with the indexed `canonical_value`/`canonical_code` (`0.005 g`). The store may
//! not depend on `caduceus-index`; a test pins both tables to the same answers.

/// The UCUM system URI.
pub(crate) const UCUM: &str = "http://unitsofmeasure.org";

/// The factor to the canonical unit and the canonical unit, for a UCUM code.
pub(crate) fn canonical(code: &str) -> Option<(f64, &'static str)> {
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
                "l" | "L" => "L",
                "g" => "g",
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
    fn prefixes_and_ratios() {
        assert_eq!(canonical("mg"), Some((1e-3, "g")));
        assert_eq!(canonical("mmol/L").map(|c| c.1), Some("mol/L"));
        assert_eq!(canonical("furlong"), None);
    }

    /// The same canonical value and unit as the indexer gives an indexed quantity.
    #[test]
    fn agrees_with_the_indexer() {
        use caduceus_store::index::IndexValue;
        let codes = [
            "mg",
            "kg",
            "g",
            "ug",
            "ng",
            "pg",
            "cg",
            "dg",
            "hg",
            "L",
            "l",
            "mL",
            "dL",
            "uL",
            "m",
            "cm",
            "mm",
            "km",
            "s",
            "ms",
            "min",
            "h",
            "d",
            "wk",
            "mol",
            "mmol",
            "umol",
            "Pa",
            "kPa",
            "mm[Hg]",
            "%",
            "[lb_av]",
            "[oz_av]",
            "[in_i]",
            "[ft_i]",
            "mg/dL",
            "g/L",
            "mmol/L",
            "umol/L",
            "g/g",
            "m/s",
            "km/h",
            "/min",
            "1/s",
            "{beats}/min",
            "furlong",
            "mo",
            "a",
            "Cel",
            "[degF]",
            "10*3/uL",
            "mg/kg",
            "",
        ];
        for code in codes {
            let obs = serde_json::json!({"resourceType": "Observation", "status": "final",
                "code": {"text": "x"},
                "valueQuantity": {"value": 5, "system": UCUM, "code": code}});
            let rows = caduceus_index::extract(&obs).rows;
            let indexed = rows.iter().find_map(|r| match &r.value {
                IndexValue::Quantity {
                    canonical_value,
                    canonical_code,
                    ..
                } if r.param == "value-quantity" => {
                    Some((*canonical_value, canonical_code.clone()))
                }
                _ => None,
            });
            let Some((value, unit)) = indexed else {
                panic!("{code}: no quantity row");
            };
            let mine = canonical(code);
            assert_eq!(unit.as_deref(), mine.map(|m| m.1), "{code}");
            assert_eq!(value, mine.map(|m| 5.0 * m.0), "{code}");
        }
    }
}
