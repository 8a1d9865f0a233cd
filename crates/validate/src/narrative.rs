//! The narrative rules: `Narrative.div` must be well-formed XHTML, hold only safe, basic
//! formatting (txt-1) and have some content (txt-2).
//!
//! Why here and natively: a narrative is shown to people, often inside web pages, so markup
//! that can run code (`<script>`, event handlers, `javascript:` links, forms, frames, objects)
//! is a stored cross-site-scripting vector. The FHIRPath engine handles invariants in general;
//! these are checked here, on every write, without it.
//!
//! What is checked, in one linear pass after parsing with `roxmltree` (a strict XML 1.0
//! parser; DTDs are refused, so no external or recursive entity is ever expanded):
//! - the document is exactly one `div` element in the XHTML namespace;
//! - txt-1: elements and attributes are on the allowlist below. It is the one of the FHIR R4
//!   narrative rules (narrative.html: "only the basic html formatting elements and attributes
//!   described in chapters 7-11 (except section 4 of chapter 9) and 12 of the HTML 4.0
//!   standard, `<a>` elements (either name or href), images and internally contained style
//!   attributes"), as the HL7 Java validator lists it (`checkInnerNames`): no `ins`/`del`
//!   (chapter 9.4), no `head`/`body`/`title`/`meta`/`link`/`base`/`style`/`script`, no forms,
//!   frames or objects, no event handlers. URLs in `href`, `src`, `cite`, `longdesc` and
//!   `usemap` must be relative, a fragment, or of a safe scheme (`http`, `https`, `urn`, and
//!   for links `ftp`, `mailto`, `tel`, for `img src` `data:image/...`; `urn` because bundles
//!   link entries by `urn:uuid:` placeholders, which transactions rewrite), read the
//!   way browsers read them (tabs and newlines dropped, surrounding spaces trimmed), after
//!   entities are expanded. `style` must not carry script-capable CSS (`expression(`,
//!   `javascript:`, bindings, `@import`, escapes or comments that could hide them).
//! - markup an HTML parser reads differently from an XML parser is refused, since clients
//!   commonly render the div as HTML: CDATA sections (a bogus comment in HTML, so their
//!   content becomes markup), processing instructions, and comments that HTML closes early
//!   (`<!-->`, `<!--->`);
//! - txt-2: some non-whitespace text, or an image.
//!
//! Problems name the rule and at most an element or attribute name (short names only), never
//! text or attribute values.

use std::fmt;

use roxmltree::{Document, Node, NodeType, ParsingOptions};

const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// The most namespace declarations a narrative may make. Real narratives make one (the XHTML
/// default namespace); the bound keeps the parser's namespace bookkeeping linear.
const MAX_NAMESPACE_DECLARATIONS: usize = 16;

/// The most XML nodes (elements, texts, comments, attributes) one narrative may have.
const MAX_NODES: u32 = 1_000_000;

/// The elements a narrative may contain (HL7 Java validator, `checkInnerNames`). A `match`
/// on literals compiles to a few integer comparisons, cheaper than a search over a table.
fn allowed_element(name: &str) -> bool {
    matches!(
        name,
        "a" | "abbr"
            | "acronym"
            | "address"
            | "area"
            | "b"
            | "bdo"
            | "big"
            | "blockquote"
            | "br"
            | "caption"
            | "cite"
            | "code"
            | "col"
            | "colgroup"
            | "dd"
            | "dfn"
            | "div"
            | "dl"
            | "dt"
            | "em"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "hr"
            | "i"
            | "img"
            | "kbd"
            | "li"
            | "map"
            | "ol"
            | "p"
            | "pre"
            | "q"
            | "samp"
            | "small"
            | "span"
            | "strong"
            | "sub"
            | "sup"
            | "table"
            | "tbody"
            | "td"
            | "tfoot"
            | "th"
            | "thead"
            | "tr"
            | "tt"
            | "ul"
            | "var"
    )
}

/// Attributes allowed on every element: the HTML 4 core and i18n attributes, and the table
/// cell attributes the Java validator accepts everywhere.
fn global_attribute(name: &str) -> bool {
    matches!(
        name,
        "abbr"
            | "accesskey"
            | "align"
            | "axis"
            | "char"
            | "charoff"
            | "class"
            | "colspan"
            | "dir"
            | "headers"
            | "id"
            | "lang"
            | "rowspan"
            | "scope"
            | "span"
            | "style"
            | "tabindex"
            | "title"
            | "valign"
            | "width"
    )
}

/// Attributes allowed on one element only.
fn element_attribute(element: &str, attribute: &str) -> bool {
    match element {
        "a" => matches!(
            attribute,
            "charset" | "coords" | "href" | "hreflang" | "name" | "rel" | "rev" | "shape" | "type"
        ),
        "area" => matches!(attribute, "alt" | "coords" | "href" | "nohref" | "shape"),
        "blockquote" | "q" => attribute == "cite",
        "img" => matches!(
            attribute,
            "alt" | "border" | "height" | "ismap" | "longdesc" | "src" | "usemap" | "width"
        ),
        "map" => attribute == "name",
        "table" => matches!(
            attribute,
            "border" | "cellpadding" | "cellspacing" | "frame" | "rules" | "summary" | "width"
        ),
        "td" => attribute == "nowrap",
        _ => false,
    }
}

/// URL schemes a link may use.
const LINK_SCHEMES: &[&str] = &["ftp", "http", "https", "mailto", "tel", "urn"];
/// URL schemes an image may use (plus `data:image/...`).
const IMAGE_SCHEMES: &[&str] = &["http", "https", "urn"];
/// URL schemes of the other URL attributes (`cite`, `longdesc`, `usemap`).
const OTHER_SCHEMES: &[&str] = &["http", "https", "urn"];

/// Text in a `style` attribute (lower-cased, whitespace removed) that can run code or hide
/// what it does.
const CSS_REFUSED: &[&str] = &[
    "expression(",
    "javascript:",
    "vbscript:",
    "-moz-binding",
    "behavior:",
    "behaviour:",
    "@import",
    "\\",
    "/*",
];

/// Why a narrative is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not well-formed XML (or a namespace error), at this line and column.
    NotWellFormed { line: u32, column: u32 },
    /// The root element is not an XHTML `div`.
    WrongRoot,
    /// A DOCTYPE (with possible entity declarations) is present.
    Doctype,
    /// An element outside the XHTML namespace.
    ForeignElement(Name),
    /// An XHTML element not on the allowlist.
    Element(Name),
    /// An attribute not on the allowlist of its element.
    Attribute { element: Name, attribute: Name },
    /// A URL attribute with a scheme that is not allowed there.
    Url { element: Name, attribute: Name },
    /// A `style` attribute with script-capable CSS.
    Style(Name),
    /// A CDATA section.
    Cdata,
    /// A processing instruction.
    ProcessingInstruction,
    /// A comment that an HTML parser would end early.
    Comment,
    /// Too many nodes or namespace declarations.
    TooComplex,
    /// No non-whitespace text and no image (txt-2).
    NoContent,
}

impl Problem {
    /// True for problems of XML syntax or structure, as opposed to the invariants.
    pub fn is_structure(&self) -> bool {
        matches!(
            self,
            Problem::NotWellFormed { .. } | Problem::WrongRoot | Problem::TooComplex
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const TXT1: &str = "txt-1: the narrative";
        match self {
            Problem::NotWellFormed { line, column } => write!(
                f,
                "the narrative is not well-formed XHTML (line {line}, column {column})"
            ),
            Problem::WrongRoot => write!(
                f,
                "the narrative must be one div element in the XHTML namespace (xmlns=\"{XHTML_NS}\")"
            ),
            Problem::TooComplex => write!(
                f,
                "the narrative has too many XML nodes or namespace declarations"
            ),
            Problem::Doctype => write!(f, "{TXT1} must not have a DOCTYPE or entity declarations"),
            Problem::ForeignElement(name) => write!(
                f,
                "{TXT1} contains an element that is not in the XHTML namespace ({name})"
            ),
            Problem::Element(name) => {
                write!(f, "{TXT1} contains an element that is not allowed ({name})")
            }
            Problem::Attribute { element, attribute } => write!(
                f,
                "{TXT1} contains an attribute that is not allowed ({attribute} on {element})"
            ),
            Problem::Url { element, attribute } => write!(
                f,
                "{TXT1} contains a URL of a scheme that is not allowed ({attribute} on {element})"
            ),
            Problem::Style(element) => write!(
                f,
                "{TXT1} contains a style attribute with script-capable CSS (on {element})"
            ),
            Problem::Cdata => write!(f, "{TXT1} must not contain CDATA sections"),
            Problem::ProcessingInstruction => {
                write!(f, "{TXT1} must not contain processing instructions")
            }
            Problem::Comment => write!(
                f,
                "{TXT1} contains a comment that HTML parsers end early (<!--> or <!--->)"
            ),
            Problem::NoContent => write!(
                f,
                "txt-2: the narrative must have some non-whitespace content"
            ),
        }
    }
}

/// An element or attribute name as shown in a diagnostic: the name when it is short and
/// plain, otherwise a placeholder, so a diagnostic never carries arbitrary text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    fn new(prefix: Option<&str>, local: &str) -> Self {
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 32
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        match prefix {
            _ if !plain(local) => Name("(unnamed)".to_owned()),
            Some(p) if plain(p) => Name(format!("{p}:{local}")),
            _ => Name(local.to_owned()),
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks one `Narrative.div` value.
pub fn check(div: &str) -> Result<(), Problem> {
    // Both scans are linear and happen before the parser does any work.
    if div.contains("<![CDATA[") {
        return Err(Problem::Cdata);
    }
    if div.matches("xmlns").count() > MAX_NAMESPACE_DECLARATIONS {
        return Err(Problem::TooComplex);
    }
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        entity_resolver: None,
    };
    let doc = Document::parse_with_options(div, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => Problem::Doctype,
        roxmltree::Error::NodesLimitReached | roxmltree::Error::NamespacesLimitReached => {
            Problem::TooComplex
        }
        e => {
            let pos = e.pos();
            Problem::NotWellFormed {
                line: pos.row,
                column: pos.col,
            }
        }
    })?;
    let root = doc.root_element();
    let Some(xhtml) = root.tag_name().namespace().filter(|&ns| ns == XHTML_NS) else {
        return Err(Problem::WrongRoot);
    };
    if root.tag_name().name() != "div" {
        return Err(Problem::WrongRoot);
    }
    let mut has_content = false;
    for node in doc.root().descendants() {
        match node.node_type() {
            NodeType::Root => {}
            NodeType::Element => {
                check_element(node, xhtml)?;
                has_content |= node.tag_name().name() == "img";
            }
            NodeType::Text if !has_content => {
                has_content = node.text().is_some_and(|t| !t.trim().is_empty());
            }
            NodeType::Text => {}
            NodeType::PI => return Err(Problem::ProcessingInstruction),
            NodeType::Comment => {
                // Outside the div a comment is never needed; inside, HTML ends `<!-->` and
                // `<!--->` at once, turning the rest into markup.
                let text = node.text().unwrap_or_default();
                let outside = node.parent().is_some_and(|p| p.is_root());
                if outside || text.starts_with('>') || text.starts_with("->") {
                    return Err(Problem::Comment);
                }
            }
        }
    }
    if has_content {
        Ok(())
    } else {
        Err(Problem::NoContent)
    }
}

fn element_name(node: Node) -> Name {
    let name = node.tag_name();
    let prefix = name.namespace().and_then(|ns| node.lookup_prefix(ns));
    Name::new(prefix, name.name())
}

/// Checks one element; `xhtml` is the root's namespace string: elements that inherit it
/// share that very string, so most are recognised without comparing text.
fn check_element(node: Node, xhtml: &str) -> Result<(), Problem> {
    let tag = node.tag_name();
    let in_xhtml = tag
        .namespace()
        .is_some_and(|ns| std::ptr::eq(ns, xhtml) || ns == XHTML_NS);
    if !in_xhtml {
        return Err(Problem::ForeignElement(element_name(node)));
    }
    let element = tag.name();
    if !allowed_element(element) {
        return Err(Problem::Element(element_name(node)));
    }
    for attr in node.attributes() {
        let local = attr.name();
        let allowed = match attr.namespace() {
            None => global_attribute(local) || element_attribute(element, local),
            Some(XML_NS) => matches!(local, "lang" | "space"),
            Some(_) => false,
        };
        if !allowed {
            let prefix = attr.namespace().and_then(|ns| node.lookup_prefix(ns));
            return Err(Problem::Attribute {
                element: Name::new(None, element),
                attribute: Name::new(prefix, local),
            });
        }
        if attr.namespace().is_some() {
            continue;
        }
        let url_ok = match (element, local) {
            ("a" | "area", "href") => url_allowed(attr.value(), LINK_SCHEMES, false),
            ("img", "src") => url_allowed(attr.value(), IMAGE_SCHEMES, true),
            (_, "cite" | "longdesc" | "usemap") => url_allowed(attr.value(), OTHER_SCHEMES, false),
            (_, "style") => {
                if !style_allowed(attr.value()) {
                    return Err(Problem::Style(Name::new(None, element)));
                }
                true
            }
            _ => true,
        };
        if !url_ok {
            return Err(Problem::Url {
                element: Name::new(None, element),
                attribute: Name::new(None, local),
            });
        }
    }
    Ok(())
}

/// True when `value` is a relative URL, a fragment, or uses one of `schemes` (or, for
/// images, is a `data:image/` URL). The scheme is found as browsers find it: leading and
/// trailing spaces and control characters are ignored and tabs and newlines removed; any
/// colon before the first `/`, `?` or `#` ends a scheme, so `java script:` is refused rather
/// than taken for a relative path.
fn url_allowed(value: &str, schemes: &[&str], image: bool) -> bool {
    let trimmed = value.trim_matches(|c: char| c <= ' ');
    // The scheme, lower-cased, in a small buffer; `len` counts past its end.
    let mut buf = [0u8; 16];
    let mut len = 0;
    let mut rest = None;
    for (i, b) in trimmed.bytes().enumerate() {
        match b {
            b'\t' | b'\n' | b'\r' => {}
            b':' => {
                rest = trimmed.get(i + 1..);
                break;
            }
            b'/' | b'?' | b'#' => break,
            b => {
                if let Some(slot) = buf.get_mut(len) {
                    *slot = b.to_ascii_lowercase();
                }
                len += 1;
            }
        }
    }
    let Some(rest) = rest else {
        return true;
    };
    let Some(scheme) = buf.get(..len).and_then(|s| std::str::from_utf8(s).ok()) else {
        return false;
    };
    if schemes.contains(&scheme) {
        return true;
    }
    image
        && scheme == "data"
        && rest
            .trim_start_matches(|c: char| c.is_ascii_whitespace())
            .get(..6)
            .is_some_and(|media| media.eq_ignore_ascii_case("image/"))
}

/// True when a `style` value carries no script-capable CSS.
fn style_allowed(value: &str) -> bool {
    // Every refused construct needs one of these (`url(`, `expression(`, `@import`, an
    // escape, a comment); plain declarations like `color: red` have none.
    if !value
        .bytes()
        .any(|b| matches!(b, b'(' | b'@' | b'\\' | b'/'))
    {
        return true;
    }
    let compact: String = value
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    !CSS_REFUSED.iter().any(|bad| compact.contains(bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn div(inner: &str) -> String {
        format!("<div xmlns=\"{XHTML_NS}\">{inner}</div>")
    }

    #[test]
    fn plain_narratives_pass() {
        for ok in [
            div("Jim"),
            div("<p>Some <b>bold</b> and <a href=\"http://example.org/x?y=1\">link</a></p>"),
            div("<a name=\"top\">x</a><a href=\"#top\">up</a><a href=\"Patient/1\">p</a>"),
            div("<a href=\"mailto:a@example.org\">mail</a><a href=\"HTTPS://x.org\">s</a>"),
            div("<a href=\"urn:uuid:2b1e8c40-9f6a-4d4e-8c1c-0f7b6f0d2a11\">entry</a>"),
            div("<img src=\"data:image/png;base64,AAAA\" alt=\"x\"/>"),
            div("<img src=\"#pic\" alt=\"family tree\"/>"),
            div(
                "<table border=\"1\" cellpadding=\"0\"><tr><td colspan=\"2\" style=\"color: red\">x</td></tr></table>",
            ),
            div(
                "<span xml:lang=\"fr\" lang=\"fr\" title=\"t\" class=\"c\" id=\"i\">bonjour</span>",
            ),
            div("<!-- a comment -->text"),
            div("&lt;script&gt; as text is fine &amp; so is &#233;"),
            div("<td style=\"background-image: url(data:image/png;base64,AAAA)\">x</td>"),
            format!("  <div xmlns=\"{XHTML_NS}\">x</div>  "),
            format!("<x:div xmlns:x=\"{XHTML_NS}\"><x:p>prefixed</x:p></x:div>"),
        ] {
            assert_eq!(check(&ok), Ok(()), "{ok}");
        }
    }

    #[track_caller]
    fn refused(text: &str, want: &str) {
        match check(text) {
            Ok(()) => panic!("accepted: {text}"),
            Err(p) => {
                let msg = p.to_string();
                assert!(msg.contains(want), "{text}: {msg} (wanted {want})");
            }
        }
    }

    #[test]
    fn scripts_and_active_content_are_refused() {
        refused(&div("<script>alert(1)</script>"), "not allowed (script)");
        for el in [
            "object", "embed", "iframe", "form", "input", "base", "link", "meta", "style", "svg",
            "math", "frame", "textarea", "button", "ins", "del", "u", "font", "body", "head",
        ] {
            refused(
                &div(&format!("<{el}>x</{el}>")),
                &format!("not allowed ({el})"),
            );
        }
        refused(
            &div("<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"),
            "not in the XHTML namespace (svg)",
        );
        refused(
            &div("<s:svg xmlns:s=\"http://www.w3.org/2000/svg\"/>"),
            "not in the XHTML namespace (s:svg)",
        );
        refused(
            &div("<img src=\"x\" onerror=\"alert(1)\"/>"),
            "(onerror on img)",
        );
        refused(&div("<p onclick=\"x()\">x</p>"), "(onclick on p)");
        refused(&div("<p ONCLICK=\"x()\">x</p>"), "(ONCLICK on p)");
        refused(&div("<p href=\"x\">x</p>"), "(href on p)");
        refused(
            &div("<a xmlns:xl=\"http://www.w3.org/1999/xlink\" xl:href=\"javascript:x\">x</a>"),
            "(xl:href on a)",
        );
    }

    #[test]
    fn script_urls_are_refused() {
        for href in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "  javascript:alert(1)",
            "javascript&#58;alert(1)",
            "&#106;avascript:alert(1)",
            "java&#x09;script:alert(1)",
            "java&#x0A;script:alert(1)",
            "&#x20;javascript:alert(1)",
            "vbscript:x",
            "data:text/html,<b>x</b>",
            "java script:x",
            "file:///etc/passwd",
        ] {
            let text = div(&format!("<a href=\"{}\">x</a>", href.replace('<', "&lt;")));
            refused(&text, "(href on a)");
        }
        refused(&div("<img src=\"javascript:alert(1)\"/>"), "(src on img)");
        refused(&div("<img src=\"mailto:x\"/>"), "(src on img)");
        refused(
            &div("<img src=\"data:text/html;base64,AAAA\"/>"),
            "(src on img)",
        );
        refused(
            &div("<blockquote cite=\"javascript:x\">q</blockquote>"),
            "(cite on blockquote)",
        );
        refused(
            &div("<map name=\"m\"><area href=\"javascript:x\" alt=\"a\"/></map>y"),
            "(href on area)",
        );
    }

    #[test]
    fn script_capable_css_is_refused() {
        for style in [
            "width: expression(alert(1))",
            "background: url(javascript:alert(1))",
            "background: url('JAVA SCRIPT:alert(1)')",
            "-moz-binding: url(x.xml#xss)",
            "behavior: url(x.htc)",
            "@import 'x.css'",
            "background: url(\\6a avascript:x)",
            "width: expr/**/ession(x)",
        ] {
            refused(
                &div(&format!("<p style=\"{style}\">x</p>")),
                "style attribute",
            );
        }
    }

    #[test]
    fn constructs_html_reads_differently_are_refused() {
        refused(&div("<![CDATA[><img src=x onerror=alert(1)>]]>"), "CDATA");
        refused(&div("<?php echo 1; ?>x"), "processing instructions");
        refused(&div("<!--><img src=x onerror=alert(1)>-->x"), "comment");
        refused(&div("<!---><img src=x onerror=alert(1)>-->x"), "comment");
        refused(&format!("{}<!-- after -->", div("x")), "comment");
    }

    #[test]
    fn doctypes_and_entities_are_refused() {
        let laughs = format!(
            "<!DOCTYPE div [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><div xmlns=\"{XHTML_NS}\">&c;</div>"
        );
        assert_eq!(check(&laughs), Err(Problem::Doctype));
        let xxe = format!(
            "<!DOCTYPE div [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><div xmlns=\"{XHTML_NS}\">&x;</div>"
        );
        assert_eq!(check(&xxe), Err(Problem::Doctype));
        let recursive = format!(
            "<!DOCTYPE div [<!ENTITY a \"&b;\"><!ENTITY b \"&a;\">]><div xmlns=\"{XHTML_NS}\">&a;</div>"
        );
        assert_eq!(check(&recursive), Err(Problem::Doctype));
        // Entities HTML knows but XML does not are not well-formed.
        assert!(matches!(
            check(&div("a&nbsp;b")),
            Err(Problem::NotWellFormed { .. })
        ));
    }

    #[test]
    fn structure_is_checked() {
        assert_eq!(check("<div>x</div>"), Err(Problem::WrongRoot));
        assert_eq!(
            check("<div xmlns=\"http://example.org\">x</div>"),
            Err(Problem::WrongRoot)
        );
        assert_eq!(
            check(&format!("<p xmlns=\"{XHTML_NS}\">x</p>")),
            Err(Problem::WrongRoot)
        );
        for bad in [
            div("<p>x"),
            div("<p>x</b>"),
            div("<p a=\"1\" a=\"2\">x</p>"),
            div("a < b"),
            format!("{}{}", div("x"), div("y")),
            format!("{}trailing", div("x")),
            div("<img src=x/>"),
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"".to_owned(),
            String::new(),
        ] {
            let problem = check(&bad).expect_err(&bad);
            assert!(problem.is_structure(), "{bad}: {problem:?}");
        }
    }

    #[test]
    fn content_is_required() {
        assert_eq!(check(&div("")), Err(Problem::NoContent));
        assert_eq!(check(&div(" \n\t ")), Err(Problem::NoContent));
        assert_eq!(check(&div("<p> </p><br/>")), Err(Problem::NoContent));
        assert_eq!(
            check(&div("<!-- only a comment -->")),
            Err(Problem::NoContent)
        );
        assert_eq!(check(&div("<img src=\"#pic\" alt=\"\"/>")), Ok(()));
    }

    #[test]
    fn diagnostics_never_carry_long_or_odd_names() {
        let long = "x".repeat(100);
        let text = div(&format!("<{long}>secret</{long}>"));
        let msg = check(&text).expect_err("refused").to_string();
        assert!(!msg.contains(&long) && !msg.contains("secret"), "{msg}");
        assert!(msg.contains("(unnamed)"), "{msg}");
    }

    /// Random damage to narratives never panics (a small deterministic fuzz).
    #[test]
    fn no_input_panics() {
        let seeds = [
            div("<p>Some <b>bold</b> and <a href=\"http://x.org/#a\">link</a> &amp; &#233;</p>"),
            div(
                "<table><tr><td style=\"color:red\">x</td></tr></table><img src=\"data:image/png;base64,AA\"/>",
            ),
            div("<!-- c --><span xml:lang=\"fr\">x</span>"),
        ];
        let pieces = [
            "<",
            ">",
            "&",
            ";",
            "\"",
            "'",
            ":",
            "#",
            "/",
            "<![CDATA[",
            "]]>",
            "<!--",
            "-->",
            "<?",
            "?>",
            "<!DOCTYPE",
            "&#",
            "&#x",
            "xmlns",
            "=",
            "\u{0}",
            "\u{e9}",
            "\u{1F600}",
            " ",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % bound as u64).unwrap_or(0)
        };
        for round in 0..20_000 {
            let mut text = seeds[round % seeds.len()].clone();
            for _ in 0..1 + next(4) {
                let mut at = next(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                if next(2) == 0 {
                    text.insert_str(at, pieces[next(pieces.len())]);
                } else {
                    let mut end = (at + 1 + next(8)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(at..end, "");
                }
            }
            let _ = check(&text);
        }
    }

    #[test]
    fn limits_hold() {
        let many = (0..20)
            .map(|i| format!("<span xmlns:p{i}=\"urn:x:{i}\">"))
            .collect::<String>();
        assert_eq!(check(&div(&many)), Err(Problem::TooComplex));
        // Deep nesting neither overflows the stack nor takes long.
        let depth = 100_000;
        let deep = format!("{}x{}", "<span>".repeat(depth), "</span>".repeat(depth));
        assert_eq!(check(&div(&deep)), Ok(()));
        let wide = format!("x{}", "<br/>".repeat(200_000));
        assert_eq!(check(&div(&wide)), Ok(()));
    }
}
