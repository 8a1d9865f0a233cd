//! The parsed search: what a store executes.
//!
//! Everything here is resolved against the definition tables: parameters carry their
//! [`SearchParamDef`]s (per resource type), values are typed by the parameter's kind and
//! modifier, dates are microsecond ranges and numbers exact decimals with their precision
//! range. Nothing here refers to a store.

use std::fmt;

use caduceus_model::Issue;
use caduceus_model::defs::SearchParamDef;

use crate::values::Decimal;

/// The type of a search parameter (`SearchParameter.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamKind {
    /// `number`
    Number,
    /// `date`
    Date,
    /// `string`
    String,
    /// `token`
    Token,
    /// `reference`
    Reference,
    /// `composite`
    Composite,
    /// `quantity`
    Quantity,
    /// `uri`
    Uri,
    /// `special`
    Special,
}

impl ParamKind {
    /// The kind of a `SearchParameter.type` code (`special` for anything unknown).
    pub fn from_code(code: &str) -> ParamKind {
        match code {
            "number" => ParamKind::Number,
            "date" => ParamKind::Date,
            "string" => ParamKind::String,
            "token" => ParamKind::Token,
            "reference" => ParamKind::Reference,
            "composite" => ParamKind::Composite,
            "quantity" => ParamKind::Quantity,
            "uri" => ParamKind::Uri,
            _ => ParamKind::Special,
        }
    }

    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            ParamKind::Number => "number",
            ParamKind::Date => "date",
            ParamKind::String => "string",
            ParamKind::Token => "token",
            ParamKind::Reference => "reference",
            ParamKind::Composite => "composite",
            ParamKind::Quantity => "quantity",
            ParamKind::Uri => "uri",
            ParamKind::Special => "special",
        }
    }
}

/// A search parameter resolved on one or more resource types.
///
/// A code can stand for a different SearchParameter on each type (`name` on Patient and on
/// Practitioner), so the definitions are kept per type: `defs` lists, for every type the
/// parameter applies to in this position of the query, that type's definition. All of them
/// have the same `kind` (the parser refuses a code whose kinds differ between types).
#[derive(Clone)]
pub struct ParamRef {
    /// The code, as in URLs (`birthdate`, `_lastUpdated`).
    pub code: &'static str,
    /// The kind, the same for every type.
    pub kind: ParamKind,
    /// `(resource type, definition)` for each type the parameter is resolved on, in the
    /// order of the types. Empty only for the built-in `_list`, which has no SearchParameter.
    pub defs: Vec<(&'static str, SearchParamDef)>,
}

impl ParamRef {
    /// The resource types this parameter is resolved on.
    pub fn types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.defs.iter().map(|(t, _)| *t)
    }

    /// For a reference parameter, every target type of any of its definitions (deduplicated,
    /// in first-seen order).
    pub fn targets(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for (_, d) in &self.defs {
            for t in d.targets {
                if !out.contains(t) {
                    out.push(t);
                }
            }
        }
        out
    }
}

impl PartialEq for ParamRef {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.kind == other.kind
            && self.defs.len() == other.defs.len()
            && self
                .defs
                .iter()
                .zip(&other.defs)
                .all(|((t1, d1), (t2, d2))| t1 == t2 && d1.url == d2.url)
    }
}

impl fmt::Debug for ParamRef {
    /// Compact: `subject(reference@Observation)`, `_id(token@146 types)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}@", self.code, self.kind.code())?;
        if self.defs.len() > 4 {
            write!(f, "{} types", self.defs.len())?;
        } else {
            let types: Vec<&str> = self.types().collect();
            write!(f, "{}", types.join(","))?;
        }
        write!(f, ")")
    }
}

/// A search modifier (`name:modifier=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    /// `:missing` (value `true` or `false`), any kind.
    Missing,
    /// `:exact` (string).
    Exact,
    /// `:contains` (string).
    Contains,
    /// `:text` (token: search the text of the concept/coding).
    Text,
    /// `:not` (token).
    Not,
    /// `:above` (token, uri, reference).
    Above,
    /// `:below` (token, uri, reference).
    Below,
    /// `:in` (token; the value is a ValueSet URL).
    In,
    /// `:not-in` (token; the value is a ValueSet URL).
    NotIn,
    /// `:identifier` (reference; the value is a token matched on `Reference.identifier`).
    Identifier,
    /// `:of-type` (token on an Identifier; the value is `system|code|value`).
    OfType,
    /// `:[type]` (reference): only references to this resource type.
    Type(&'static str),
}

impl Modifier {
    /// The text after the `:`.
    pub fn code(self) -> &'static str {
        match self {
            Modifier::Missing => "missing",
            Modifier::Exact => "exact",
            Modifier::Contains => "contains",
            Modifier::Text => "text",
            Modifier::Not => "not",
            Modifier::Above => "above",
            Modifier::Below => "below",
            Modifier::In => "in",
            Modifier::NotIn => "not-in",
            Modifier::Identifier => "identifier",
            Modifier::OfType => "of-type",
            Modifier::Type(t) => t,
        }
    }
}

/// The comparison prefix of a number, date or quantity value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prefix {
    /// `eq`: the ranges overlap fully (the default).
    #[default]
    Eq,
    /// `ne`
    Ne,
    /// `gt`
    Gt,
    /// `lt`
    Lt,
    /// `ge`
    Ge,
    /// `le`
    Le,
    /// `sa`: starts after.
    Sa,
    /// `eb`: ends before.
    Eb,
    /// `ap`: approximately (the executor chooses the tolerance; the spec suggests 10%).
    Ap,
}

impl Prefix {
    /// Every prefix.
    pub const ALL: [Prefix; 9] = [
        Prefix::Eq,
        Prefix::Ne,
        Prefix::Gt,
        Prefix::Lt,
        Prefix::Ge,
        Prefix::Le,
        Prefix::Sa,
        Prefix::Eb,
        Prefix::Ap,
    ];

    /// The two-letter code.
    pub fn code(self) -> &'static str {
        match self {
            Prefix::Eq => "eq",
            Prefix::Ne => "ne",
            Prefix::Gt => "gt",
            Prefix::Lt => "lt",
            Prefix::Ge => "ge",
            Prefix::Le => "le",
            Prefix::Sa => "sa",
            Prefix::Eb => "eb",
            Prefix::Ap => "ap",
        }
    }

    /// The prefix of this two-letter code.
    pub fn from_code(code: &str) -> Option<Prefix> {
        Prefix::ALL.into_iter().find(|p| p.code() == code)
    }
}

/// A number as searched: the exact text, its value, and the range its precision implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberValue {
    /// The comparison.
    pub prefix: Prefix,
    /// The number exactly as written (without the prefix), e.g. `100.00` or `1.5e3`.
    pub text: String,
    /// Its value, with the scale written (`100.00` keeps two decimals).
    pub value: Decimal,
    /// Lower bound (inclusive) of the implicit range: value minus half a unit of the last
    /// written digit (`100` → `99.5`, `100.00` → `99.995`).
    pub low: Decimal,
    /// Upper bound (exclusive): value plus half a unit of the last written digit.
    pub high: Decimal,
}

/// How much of a date/time was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DatePrecision {
    /// `2024`
    Year,
    /// `2024-02`
    Month,
    /// `2024-02-03`
    Day,
    /// `2024-02-03T04:05` (+zone)
    Minute,
    /// `2024-02-03T04:05:06` (+zone)
    Second,
    /// Fractional seconds were given.
    Fraction,
}

/// A date, dateTime or instant as searched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateValue {
    /// The comparison.
    pub prefix: Prefix,
    /// The date exactly as written (without the prefix).
    pub text: String,
    /// Start of the range it covers, microseconds since the epoch, UTC (inclusive).
    pub start: i64,
    /// End of the range it covers (exclusive).
    pub end: i64,
    /// How much was written.
    pub precision: DatePrecision,
}

/// A token: `code`, `system|code`, `|code` or `system|`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenValue {
    /// `None`: any system (`code`). `Some("")`: no system (`|code`). `Some(s)`: that system.
    pub system: Option<String>,
    /// `None`: any code (`system|`).
    pub code: Option<String>,
}

/// The codes a terminology value stands for: the expansion of the ValueSet of `:in` /
/// `:not-in`, or a code with its descendants (`:below`) or ancestors (`:above`) in a
/// CodeSystem. The engine builds it from ValueSets and CodeSystems stored on the server and
/// puts it in place of the value as written, keeping the criterion's modifier; a store
/// matches a resource when any of its codings is one of `codes` (`:not-in`: none is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    /// The value as the client wrote it (what the canonical query string shows).
    pub written: Box<SearchValue>,
    /// `(system, code)` pairs, sorted and without duplicates; possibly empty.
    pub codes: Vec<(String, String)>,
}

/// `:of-type` on an Identifier: `system|code|value` (the identifier's type, and its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfTypeValue {
    /// The system of `Identifier.type`.
    pub system: String,
    /// The code of `Identifier.type`.
    pub code: String,
    /// `Identifier.value`.
    pub value: String,
}

/// A quantity: `[prefix]number|system|code` (system and code optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityValue {
    /// The number, with prefix and precision range.
    pub number: NumberValue,
    /// The unit system (`None`: any).
    pub system: Option<String>,
    /// The unit code, matched against `code` or `unit` (`None`: any unit).
    pub code: Option<String>,
}

/// A reference value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceValue {
    /// A local reference: `Patient/123`, `123`, `Patient/123/_history/2`, or an absolute URL
    /// under the server's base.
    Local {
        /// The type; `None` for a bare id when the parameter may point to several types.
        resource_type: Option<&'static str>,
        /// The logical id.
        id: String,
        /// The version, from `/_history/[vid]`.
        version: Option<String>,
    },
    /// Any other URL: an absolute reference elsewhere, a `urn:`, or a canonical
    /// (`url|version` splits off the version).
    Url {
        /// The URL without the `|version`.
        url: String,
        /// The version after `|`, for canonicals.
        version: Option<String>,
    },
}

/// `near=latitude|longitude|distance|units` (Location).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearValue {
    /// Latitude, decimal degrees.
    pub latitude: Decimal,
    /// Longitude, decimal degrees.
    pub longitude: Decimal,
    /// The distance (`None`: the server's default).
    pub distance: Option<Decimal>,
    /// The UCUM unit of the distance (`None`: km).
    pub units: Option<String>,
}

/// One value of a criterion (criteria OR their values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchValue {
    /// `:missing=true|false`.
    Boolean(bool),
    /// A number parameter.
    Number(NumberValue),
    /// A date parameter.
    Date(DateValue),
    /// A string parameter, or the text of `:text` on a token.
    String(String),
    /// A token parameter, or a reference with `:identifier`.
    Token(TokenValue),
    /// `:of-type` on a token.
    OfType(OfTypeValue),
    /// A quantity parameter.
    Quantity(QuantityValue),
    /// A reference parameter.
    Reference(ReferenceValue),
    /// A uri parameter, or the ValueSet of `:in`/`:not-in`.
    Uri(String),
    /// A token `:in`/`:not-in`/`:above`/`:below` value resolved by the engine into the codes
    /// it stands for (never produced by the parser).
    TokenSet(TokenSet),
    /// A composite parameter: one value per component, typed by the component's kind.
    Composite(Vec<SearchValue>),
    /// `near` on Location.
    Near(NearValue),
    /// Any other special parameter (and `_list`), as written (unescaped).
    Special(String),
}

/// One step from the resources being matched to the resources a parameter is evaluated on.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// Forward chain: follow reference parameter `param` to resources of `targets`
    /// (`subject:Patient.name` → `param` subject, `targets` `[Patient]`).
    Chain {
        /// The reference parameter followed.
        param: ParamRef,
        /// The type given as modifier (`subject:Patient.`), if any.
        explicit_type: Option<&'static str>,
        /// The types the next step is evaluated on: the explicit type, or the parameter's
        /// targets that have the next parameter.
        targets: Vec<&'static str>,
    },
    /// Reverse chain (`_has:Observation:subject:`): resources of `source_type` whose
    /// reference parameter `param` points at the current resource.
    Has {
        /// The type of the referring resources.
        source_type: &'static str,
        /// The reference parameter of `source_type` that points back.
        param: ParamRef,
    },
}

/// One criterion of the search: a parameter (possibly at the end of chains), an optional
/// modifier, and the values it may match (OR).
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// The chain from the searched resources to the resources `param` applies to (empty for
    /// a plain parameter); evaluated left to right.
    pub path: Vec<Link>,
    /// The parameter, resolved on the types at the end of `path`.
    pub param: ParamRef,
    /// The modifier, if any.
    pub modifier: Option<Modifier>,
    /// The values; a resource matches when it matches any of them. Never empty.
    pub values: Vec<SearchValue>,
}

/// `_include` / `_revinclude`.
#[derive(Debug, Clone, PartialEq)]
pub struct Include {
    /// The type holding the reference (`Observation` in `Observation:subject`); `None` for
    /// the wildcard `*`.
    pub source_type: Option<&'static str>,
    /// The reference parameter; `None` for `Type:*` (every reference parameter).
    pub param: Option<ParamRef>,
    /// Only references to this type (`Observation:subject:Patient`).
    pub target_type: Option<&'static str>,
    /// `:iterate` (or its old name `:recurse`): apply to included resources too.
    pub iterate: bool,
}

/// One `_sort` key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// The parameter to sort on.
    pub param: ParamRef,
    /// `-param`.
    pub descending: bool,
}

/// `_summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    /// `true`: the summary elements only.
    True,
    /// `text`: text, id, meta and mandatory elements.
    Text,
    /// `data`: everything but the text.
    Data,
    /// `count`: only the total, no entries.
    Count,
    /// `false`: everything.
    False,
}

/// `_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    /// No total.
    None,
    /// An estimate is fine.
    Estimate,
    /// An accurate total.
    Accurate,
}

/// `_contained`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contained {
    /// Search contained resources only.
    True,
    /// Search top-level resources only (the default).
    False,
    /// Both.
    Both,
}

/// `_containedType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainedType {
    /// Return the container resources.
    Container,
    /// Return the contained resources themselves.
    Contained,
}

/// A compartment search (`GET /Patient/123/Observation?...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompartmentFilter {
    /// The compartment type (`Patient`).
    pub compartment_type: &'static str,
    /// The compartment's id (`123`).
    pub id: String,
    /// For each searched type, the parameters that put its resources in the compartment
    /// (any of them referencing `compartment_type/id` matches).
    pub links: Vec<(&'static str, &'static [&'static str])>,
}

/// A parsed, checked search request.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The resource types searched (one for a type-level search).
    pub types: Vec<&'static str>,
    /// The `_type` list of a system-level search, as given (`None` when absent).
    pub type_filter: Option<Vec<&'static str>>,
    /// Set for compartment searches.
    pub compartment: Option<CompartmentFilter>,
    /// The criteria; a resource matches when it matches all of them.
    pub criteria: Vec<Criterion>,
    /// `_include`s, in order.
    pub includes: Vec<Include>,
    /// `_revinclude`s, in order.
    pub revincludes: Vec<Include>,
    /// `_sort` keys, most significant first.
    pub sort: Vec<SortKey>,
    /// Page size: `_count`, or the default, capped at the maximum.
    pub count: u32,
    /// `_summary`.
    pub summary: Option<Summary>,
    /// `_elements`, as given (element names, optionally `Type.`-prefixed).
    pub elements: Vec<String>,
    /// `_total`.
    pub total: Option<Total>,
    /// `_contained`.
    pub contained: Option<Contained>,
    /// `_containedType`.
    pub contained_type: Option<ContainedType>,
    /// Warnings about parameters that were ignored (unknown or unsupported, in lenient
    /// handling) or adjusted (`_count` above the maximum). Not part of the query proper:
    /// `to_query_string` leaves ignored parameters out.
    pub ignored: Vec<Issue>,
}
