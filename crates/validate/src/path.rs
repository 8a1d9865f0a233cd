//! The location being validated, as a stack of borrowed segments.
//!
//! Pushing and popping a segment costs nothing but a `Vec` slot; the FHIRPath-style text
//! (`Bundle.entry[2].resource.status`) is only built when an issue is reported, so valid
//! resources never pay for it.

use std::fmt::Write;

/// One step of a location: an element name and, inside an array, the item index.
#[derive(Debug, Clone, Copy)]
struct Segment<'a> {
    name: &'a str,
    index: Option<usize>,
}

/// The location currently visited.
#[derive(Debug, Default)]
pub struct Path<'a> {
    segments: Vec<Segment<'a>>,
}

impl<'a> Path<'a> {
    /// Enters element `name`.
    pub fn push(&mut self, name: &'a str) {
        self.segments.push(Segment { name, index: None });
    }

    /// Leaves the current element.
    pub fn pop(&mut self) {
        self.segments.pop();
    }

    /// Sets the array index of the current element (`None` for the element as a whole).
    pub fn set_index(&mut self, index: Option<usize>) {
        if let Some(last) = self.segments.last_mut() {
            last.index = index;
        }
    }

    /// The array index of the current element, if it is an array item.
    pub fn index(&self) -> Option<usize> {
        self.segments.last().and_then(|s| s.index)
    }

    /// True when nothing has been entered yet.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The location as text, e.g. `Patient.name[0].given[1]`.
    pub fn render(&self) -> String {
        self.render_with(None)
    }

    /// The location of the element containing the current one.
    pub fn render_parent(&self) -> String {
        Path {
            segments: self.segments[..self.segments.len().saturating_sub(1)].to_vec(),
        }
        .render()
    }

    /// The location of a child element that is not being visited (e.g. a missing one).
    pub fn render_child(&self, child: &str) -> String {
        self.render_with(Some(child))
    }

    fn render_with(&self, child: Option<&str>) -> String {
        let mut out = String::with_capacity(64);
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            out.push_str(seg.name);
            if let Some(index) = seg.index {
                let _ = write!(out, "[{index}]");
            }
        }
        if let Some(child) = child {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(child);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fhirpath_style() {
        let mut p = Path::default();
        p.push("Patient");
        p.push("name");
        p.set_index(Some(0));
        p.push("given");
        p.set_index(Some(1));
        assert_eq!(p.render(), "Patient.name[0].given[1]");
        p.pop();
        assert_eq!(p.render_child("family"), "Patient.name[0].family");
    }
}
