//! Search index rows: what a store keeps per resource version so that searches do not scan
//! resources. Extraction (evaluating each SearchParameter's FHIRPath expression) lives in
//! `caduceus-index`; these are only the values, so a store needs no FHIRPath to hold them.
//!
//! Each value is kept in the form its search type compares on: strings normalised for
//! case and accents (and exact for `:exact`), dates as the half-open range of microseconds
//! their precision covers, numbers and quantities with the range their precision implies,
//! tokens as system and code, references split into type, id, version and URL.
//!
//! Two searches reuse these forms rather than adding their own:
//! - a reference parameter's `Reference.identifier` is a [`IndexValue::Token`] row of that
//!   reference parameter (what `subject:identifier=system|value` matches);
//! - a composite parameter's value is an [`IndexValue::Composite`]: one tuple of component
//!   values taken from the same element; and a token parameter on an `Identifier` also gets
//!   a composite `(type coding, identifier value)` per `Identifier.type` coding, which
//!   `identifier:of-type=system|code|value` matches.

pub mod normalize;
pub mod units;

/// The index rows of one resource in a resource's `contained` list. A store keeps them apart
/// from top-level resources (a contained resource is not a resource of the server: only
/// `_contained` searches and chains see it), under the contained resource's own type.
///
/// References between a container and its contained resources are local (`#p1`, and `#`
/// for the container): in [`IndexValue::Reference`] rows, of the container and of its
/// contained resources alike, such a target has `target_type` set and a `target_id` that
/// starts with `#`: `#p1` names the contained resource `p1` of the same container, a bare
/// `#` the container itself. The store resolves them when it knows the container's key
/// (ids never contain `#`, so such a target never names a top-level resource).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainedIndex {
    /// The contained resource's type (`resourceType`), e.g. `Medication`.
    pub resource_type: String,
    /// Its id within the container (`contained[i].id`), e.g. `med1`.
    pub id: String,
    /// Its index rows, as a top-level resource of that type would have them.
    pub rows: Vec<IndexRow>,
}

/// One index row: a search parameter (by code) and one value it takes for the resource.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRow {
    /// The search parameter's code, e.g. `birthdate`.
    pub param: &'static str,
    /// The value.
    pub value: IndexValue,
}

/// A search-index value, by search parameter type.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// `string`: `normalized` is lower case without accents and with collapsed whitespace
    /// (what plain and `:contains` searches compare); `exact` is the text as written.
    String {
        /// Normalised text.
        normalized: String,
        /// Text as written (for `:exact`).
        exact: String,
    },
    /// `token`: a code with its system, and display text for `:text`.
    Token {
        /// The code system (absent for plain codes, booleans, ids).
        system: Option<String>,
        /// The code (or identifier value, ContactPoint value...).
        code: Option<String>,
        /// Normalised display or text, for `:text`.
        text: Option<String>,
    },
    /// `reference`: a local or external reference, or a canonical URL.
    Reference {
        /// Target type of a relative (or this-server absolute) reference.
        target_type: Option<String>,
        /// Target id; `#id` (`#` alone) for a contained resource (the container), see
        /// [`ContainedIndex`].
        target_id: Option<String>,
        /// Target version, when the reference names one.
        version: Option<String>,
        /// An absolute URL or canonical (without its `|version`) the reference names.
        url: Option<String>,
    },
    /// `date`: the covered range `[start, end)` in microseconds since the epoch. Open
    /// Period ends use `i64::MIN` / `i64::MAX`.
    Date {
        /// Inclusive start.
        start: i64,
        /// Exclusive end.
        end: i64,
    },
    /// `number`: the value and the range its stated precision implies.
    Number {
        /// The value.
        value: f64,
        /// Lower bound of the precision range.
        low: f64,
        /// Upper bound of the precision range.
        high: f64,
    },
    /// `quantity`: value with system and code, plus the value in canonical UCUM units when
    /// the unit is one the indexer knows.
    Quantity {
        /// The value as written.
        value: f64,
        /// Lower bound of the precision range.
        low: f64,
        /// Upper bound of the precision range.
        high: f64,
        /// Unit system.
        system: Option<String>,
        /// Unit code (or the unit text when there is no code).
        code: Option<String>,
        /// Value in canonical units (e.g. g for mg).
        canonical_value: Option<f64>,
        /// The canonical unit code.
        canonical_code: Option<String>,
    },
    /// `uri`.
    Uri(String),
    /// `composite`: one value per component, in the composite's component order, all taken
    /// from the same element the composite's expression selects (never [`IndexValue::Composite`]
    /// themselves). Under a token parameter on an Identifier: `[Token(type system, type code),
    /// Token(identifier system, identifier value)]`, for `:of-type`.
    Composite(Vec<IndexValue>),
}

impl IndexValue {
    /// The search parameter type this value belongs to.
    pub fn kind(&self) -> &'static str {
        match self {
            IndexValue::String { .. } => "string",
            IndexValue::Token { .. } => "token",
            IndexValue::Reference { .. } => "reference",
            IndexValue::Date { .. } => "date",
            IndexValue::Number { .. } => "number",
            IndexValue::Quantity { .. } => "quantity",
            IndexValue::Uri(_) => "uri",
            IndexValue::Composite(_) => "composite",
        }
    }
}
