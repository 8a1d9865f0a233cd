//! Unit tests of the parser and of the semantics the official suite covers thinly.

use crate::{Context, Expr, Expression, Item, to_strings};
use serde_json::{Value, json};

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "active": true,
        "name": [
            {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
            {"use": "usual", "given": ["Jim"]}
        ],
        "birthDate": "1974-12-25",
        "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
        "deceasedBoolean": false,
        "contained": [{"resourceType": "Organization", "id": "org", "name": "Acme"}],
        "managingOrganization": {"reference": "#org"},
        "generalPractitioner": [{"reference": "Practitioner/123"}]
    })
}

fn eval(expr: &str, input: &Value) -> Vec<String> {
    let e = Expression::parse(expr).unwrap_or_else(|err| panic!("{expr}: {err}"));
    let out = e
        .evaluate(input, &Context::new())
        .unwrap_or_else(|err| panic!("{expr}: {err}"));
    to_strings(&out)
}

fn eval1(expr: &str) -> Vec<String> {
    eval(expr, &patient())
}

#[test]
fn precedence() {
    assert_eq!(eval1("1 + 2 * 3"), ["7"]);
    assert_eq!(eval1("(1 + 2) * 3"), ["9"]);
    assert_eq!(eval1("2 - 3 - 4"), ["-5"]);
    assert_eq!(eval1("1 | 2 = 1 | 2"), ["true"]);
    assert_eq!(eval1("true or false and false"), ["true"]);
    assert_eq!(eval1("false implies false or true"), ["true"]);
    assert_eq!(eval1("-2.5.abs()"), ["-2.5"]);
    assert_eq!(eval1("(-2.5).abs()"), ["2.5"]);
    assert_eq!(eval1("1 + 1 is Integer"), ["2"].map(|_| "true"));
    assert_eq!(eval1("'a' & 'b' + 'c'"), ["abc"]);
    assert_eq!(eval1("7 div 2 + 7 mod 2"), ["4"]);
}

#[test]
fn parses_literals() {
    let e = Expression::parse("@2019-01-01T10:00:00.000+02:00").expect("dateTime");
    assert!(matches!(e.ast(), Expr::Literal(_)));
    assert_eq!(eval1("'a\\'b\\u0041\\n'.length()"), ["5"]);
    assert_eq!(eval1("`given`.exists()"), ["false"]);
    assert_eq!(eval1("4 days = 4 'd'"), ["true"]);
    assert_eq!(eval1("1 year = 1 'a'"), Vec::<String>::new());
    assert_eq!(eval1("1 year ~ 1 'a'"), ["true"]);
    assert_eq!(eval1("{}.empty()"), ["true"]);
    assert_eq!(eval1("@T12:00 < @T13:00"), ["true"]);
    assert_eq!(eval1("1.0 = 1"), ["true"]);
    assert_eq!(eval1("0.1 + 0.2 = 0.3"), ["true"]);
}

#[test]
fn rejects_bad_syntax() {
    for bad in [
        "1 +",
        "name.",
        "name[",
        "(1",
        "'unterminated",
        "foo(",
        "1 2",
        "name.where(",
        "%",
        "@",
        "unknownFn()",
        "where()",
        "a.b.c(1,",
    ] {
        assert!(Expression::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn navigation_and_collections() {
    assert_eq!(eval1("Patient.name.given"), ["Peter", "James", "Jim"]);
    assert_eq!(eval1("name.given"), ["Peter", "James", "Jim"]);
    assert_eq!(eval1("Observation.status"), Vec::<String>::new());
    assert_eq!(eval1("name.where(use = 'usual').given"), ["Jim"]);
    assert_eq!(eval1("name.given[1]"), ["James"]);
    assert_eq!(eval1("name.given.count()"), ["3"]);
    assert_eq!(eval1("name.select(given.first())"), ["Peter", "Jim"]);
    assert_eq!(
        eval1("name.given.where($index > 0 and $this != 'Jim')"),
        ["James"]
    );
    assert_eq!(eval1("(1 | 2 | 2 | 3).count()"), ["3"]);
    assert_eq!(eval1("(1 | 2).combine(2).count()"), ["3"]);
    assert_eq!(eval1("(1 | 2 | 3).aggregate($this + $total, 0)"), ["6"]);
}

#[test]
fn empty_propagation_and_three_valued_logic() {
    assert_eq!(eval1("{} = 1"), Vec::<String>::new());
    assert_eq!(eval1("{} and false"), ["false"]);
    assert_eq!(eval1("{} and true"), Vec::<String>::new());
    assert_eq!(eval1("{} or true"), ["true"]);
    assert_eq!(eval1("{} implies true"), ["true"]);
    assert_eq!(eval1("({} xor true).empty()"), ["true"]);
    assert_eq!(eval1("name.family + 'x'"), ["Chalmersx"]);
    assert_eq!(eval1("{} + 1"), Vec::<String>::new());
}

#[test]
fn choice_types_and_primitive_extensions() {
    assert_eq!(eval1("Patient.deceased"), ["false"]);
    assert_eq!(eval1("Patient.deceased is boolean"), ["true"]);
    assert_eq!(eval1("Patient.deceased.as(boolean)"), ["false"]);
    assert_eq!(eval1("(Patient.deceased as dateTime).exists()"), ["false"]);
    assert_eq!(
        eval1(
            "Patient.birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime').value"
        ),
        ["1974-12-25T14:35:45-05:00"]
    );
    assert_eq!(eval1("Patient.birthDate < @1975"), ["true"]);
    assert_eq!(eval1("Patient.birthDate = @1974-12"), Vec::<String>::new());
    assert_eq!(eval1("Patient.birthDate.hasValue()"), ["true"]);
    assert_eq!(eval1("Patient.name.hasValue()"), ["false"]);
    let strict = Context::new().strict(true);
    let p = patient();
    for bad in ["Patient.deceasedBoolean", "name.given1", "Encounter.status"] {
        let e = Expression::parse(bad).expect("parses");
        assert!(
            e.evaluate(&p, &strict).is_err(),
            "{bad} should fail in strict mode"
        );
        assert!(
            e.evaluate(&p, &Context::new()).is_ok(),
            "{bad} is lenient by default"
        );
    }
}

#[test]
fn resolve_and_types() {
    assert_eq!(eval1("managingOrganization.resolve().name"), ["Acme"]);
    assert_eq!(
        eval1("managingOrganization.resolve() is Organization"),
        ["true"]
    );
    assert_eq!(
        eval1("generalPractitioner.where(resolve() is Practitioner).count()"),
        ["1"]
    );
    assert_eq!(
        eval1("generalPractitioner.where(resolve() is Patient).count()"),
        ["0"]
    );
    assert_eq!(eval1("Patient is DomainResource"), ["true"]);
    assert_eq!(eval1("contained.ofType(Organization).name"), ["Acme"]);
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://x/Patient/1", "resource": {"resourceType": "Patient", "id": "1", "gender": "male"}},
        {"fullUrl": "http://x/Observation/2", "resource": {"resourceType": "Observation", "id": "2", "status": "final",
            "code": {"text": "t"}, "subject": {"reference": "Patient/1"}}}
    ]});
    assert_eq!(
        eval(
            "Bundle.entry.resource.ofType(Observation).subject.resolve().gender",
            &bundle
        ),
        ["male"]
    );
}

#[test]
fn quantities_and_dates() {
    let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "w"},
        "valueQuantity": {"value": 185.0, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"},
        "effectiveDateTime": "2013-04-02T09:30:10+01:00"});
    assert_eq!(eval("Observation.value.value", &obs), ["185.0"]);
    assert_eq!(eval("(Observation.value as Quantity).unit", &obs), ["lbs"]);
    assert_eq!(eval("Observation.value > 80 'kg'", &obs), ["true"]);
    assert_eq!(eval("Observation.value < 84 'kg'", &obs), ["true"]);
    assert_eq!(
        eval("Observation.effective > @2013-04-02T08:00:00Z", &obs),
        ["true"]
    );
    assert_eq!(
        eval("Observation.effective > @2013-04-02T08:30:10Z", &obs),
        ["false"]
    );
    assert_eq!(
        eval(
            "Observation.effective.as(dateTime) | Observation.effective.as(Period)",
            &obs
        ),
        ["2013-04-02T09:30:10+01:00"]
    );
    assert_eq!(eval1("@2019-01-31 + 1 month"), ["2019-02-28"]);
    assert_eq!(
        eval1("@2019-03-01T10:00 - 90 minutes"),
        ["2019-03-01T08:30"]
    );
    assert_eq!(eval1("1.0 'g' = 1000 'mg'"), ["true"]);
    assert_eq!(eval1("1 'g' = 1 'm'"), Vec::<String>::new());
    assert_eq!(eval1("'1.50' ~ '1.5'"), ["false"]);
    assert_eq!(eval1("1.50 ~ 1.5"), ["true"]);
    assert_eq!(eval1("'Hello  World' ~ 'hello world'"), ["true"]);
}

#[test]
fn borrowed_results() {
    let p = patient();
    let e = Expression::parse("Patient.name.family").expect("parses");
    let out = e.evaluate(&p, &Context::new()).expect("evaluates");
    match &out[0] {
        Item::Node(n) => assert!(std::ptr::eq(
            n.value.expect("value"),
            &p["name"][0]["family"]
        )),
        other => panic!("expected a borrowed node, got {other:?}"),
    }
    assert!(matches!(
        out[0].as_str(),
        Some(std::borrow::Cow::Borrowed("Chalmers"))
    ));
}

#[test]
fn invariants_evaluate_on_elements() {
    let p = json!({"resourceType": "Patient", "contact": [
        {"name": {"family": "A"}},
        {"gender": "male"}
    ]});
    let ctx = Context::new();
    let contacts = Expression::parse("Patient.contact").expect("parses");
    let contacts = contacts.evaluate(&p, &ctx).expect("evaluates");
    let inv = Expression::parse(
        "name.exists() or telecom.exists() or address.exists() or organization.exists()",
    )
    .expect("parses");
    let results: Vec<Vec<String>> = contacts
        .iter()
        .map(|c| {
            to_strings(
                &inv.evaluate_on(std::slice::from_ref(c), &p, &ctx)
                    .expect("evaluates"),
            )
        })
        .collect();
    assert_eq!(results, [["true"], ["false"]]);
    let res = Expression::parse("%resource.contact.count() = 2 and %context.gender = 'male'")
        .expect("parses");
    assert_eq!(
        to_strings(
            &res.evaluate_on(&contacts[1..], &p, &ctx)
                .expect("evaluates")
        ),
        ["true"]
    );
}

#[test]
fn expressions_are_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expression>();
    assert_send_sync::<crate::Cache>();
    assert_send_sync::<Item<'static>>();
}

#[test]
fn cache_reuses_parses() {
    let cache = crate::Cache::new();
    let a = cache.get("Patient.name").expect("parses");
    let b = cache.get("Patient.name").expect("parses");
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert!(cache.get("Patient.").is_err());
    assert_eq!(cache.len(), 2);
}

/// A tiny deterministic generator (no dependency needed for fuzz-ish inputs).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn no_panics_on_random_or_truncated_input() {
    let seeds = [
        "Patient.name.where(use = 'official').given.first().upper() & ' ' + 'x'",
        "Observation.value.as(Quantity) > 5 'mg' and (1 | 2).count() = 2",
        "@2019-01-01T10:00:00.000+02:00 + 4 days - 1 'h' implies true xor {}",
        "name.select(given.substring(0, 1).replaceMatches('[a-z]', '$1')).aggregate($total + 1, 0)",
        "descendants().ofType(FHIR.string).exists($this.length() div 0 mod 1 > -2.5)",
        "%resource.contained.repeat(contained).resolve().iif($index, $this, `x`).toQuantity('g')",
        "(1 'cm' * 2 'm' / 0).power(0.5).ln().log(10).sqrt().exp().round(2).truncate()",
    ];
    let alphabet: Vec<char> = "()[]{}.,'`%$@+-*/&|=~!<>0123456789 aTZ:isasnotwhere"
        .chars()
        .collect();
    let p = patient();
    let ctx = Context::new();
    let strict = Context::new().strict(true);
    let mut rng = Lcg(42);
    let run = |text: &str| {
        if let Ok(e) = Expression::parse(text) {
            let _ = e.evaluate(&p, &ctx);
            let _ = e.evaluate(&p, &strict);
            let _ = e.evaluate(&Value::Null, &ctx);
        }
    };
    for s in seeds {
        for cut in 0..=s.len() {
            if s.is_char_boundary(cut) {
                run(&s[..cut]);
            }
        }
        for _ in 0..200 {
            let mut chars: Vec<char> = s.chars().collect();
            for _ in 0..3 {
                let i = (rng.next() as usize) % chars.len().max(1);
                let c = alphabet[(rng.next() as usize) % alphabet.len()];
                if i < chars.len() {
                    chars[i] = c;
                }
            }
            run(&chars.into_iter().collect::<String>());
        }
    }
    for _ in 0..2000 {
        let len = (rng.next() % 30) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[(rng.next() as usize) % alphabet.len()])
            .collect();
        run(&s);
    }
    // deep nesting is an error, not a stack overflow
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(Expression::parse(&deep).is_err());
    let deep_neg = format!("{}1", "-".repeat(5000));
    assert!(Expression::parse(&deep_neg).is_err());
}

#[test]
fn every_core_search_parameter_expression_parses_and_runs() {
    let mut failures = Vec::new();
    let mut count = 0;
    for rt in caduceus_model::defs::resource_types() {
        let resource = json!({"resourceType": rt, "id": "x"});
        for p in caduceus_model::defs::search_params(rt) {
            if p.expression.is_empty() {
                continue;
            }
            count += 1;
            match Expression::parse(p.expression) {
                Ok(e) => {
                    if let Err(err) = e.evaluate(&resource, &Context::new()) {
                        failures.push(format!("{rt}.{}: {err}", p.code));
                    }
                }
                Err(err) => failures.push(format!("{rt}.{}: `{}`: {err}", p.code, p.expression)),
            }
        }
    }
    assert!(count > 1000, "only {count} expressions");
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn extreme_values_do_not_panic() {
    for e in [
        "9223372036854775807 + 1",
        "(-9223372036854775807 - 1) * -1",
        "9223372036854775807 * 2",
        "79228162514264337593543950335.0 + 1.0",
        "0.0000000000000000000000000001.lowBoundary()",
        "79228162514264337593543950335.highBoundary(0)",
        "@2019-01-01 + 9223372036854775807 days",
        "@2019-01-01T10:00 + 9223372036854775807 'ms'",
        "@T10:00 + 9223372036854775807 hours",
        "@9999-12-31 + 1 day",
        "@0001-01-01 - 1 year",
        "1 / 0",
        "1 div 0",
        "1 mod 0",
        "1.5 mod 0.0",
        "2.power(1000)",
        "(-8).power(0.5)",
        "0.ln()",
        "1.log(1)",
        "'x'.substring(-1)",
        "'abc'.matches('(')",
        "(1 | 2).single()",
    ] {
        if let Ok(x) = Expression::parse(e) {
            let _ = x.evaluate(&Value::Null, &Context::new());
        }
    }
}

#[test]
fn deep_expressions_are_errors_not_stack_overflows() {
    for deep in [
        "a.".repeat(100_000) + "a",
        "1+".repeat(100_000) + "1",
        "a[0]".repeat(100_000),
        "(".repeat(100_000),
        "-".repeat(100_000) + "1",
        "1 is Integer".to_string() + &" is Boolean".repeat(100_000),
        "where(".repeat(100_000),
    ] {
        assert!(Expression::parse(&deep).is_err());
    }
    // the deepest accepted trees evaluate (or fail cleanly) on a small thread stack
    let exprs: Vec<String> = vec![
        "name.".repeat(280) + "given",
        "1 + ".repeat(280) + "1",
        "(".repeat(140) + "1" + &")".repeat(140),
        "name.where(".repeat(70) + "true" + &")".repeat(70),
    ];
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let p = patient();
            for text in &exprs {
                let e = Expression::parse(text).expect("within the depth limit");
                let _ = e.evaluate(&p, &Context::new());
                let _ = e.clone();
            }
        })
        .expect("thread");
    assert!(handle.join().is_ok());
}

#[test]
fn syntax_tree_shapes() {
    use crate::ast::{BinOp, TypeFn};
    use crate::functions::Func;
    let ast = |s: &str| Expression::parse(s).expect(s).ast().clone();
    // `is` binds tighter than `|`, looser than `+`
    assert!(
        matches!(ast("a | b is Integer"), Expr::Binary(BinOp::Union, _, r) if matches!(*r, Expr::Is(..)))
    );
    assert!(
        matches!(ast("1 + 2 is Integer"), Expr::Is(inner, _) if matches!(*inner, Expr::Binary(BinOp::Add, ..)))
    );
    // `implies` is the loosest, `and` binds tighter than `or`
    assert!(
        matches!(ast("a or b and c implies d"), Expr::Binary(BinOp::Implies, l, _)
        if matches!(&*l, Expr::Binary(BinOp::Or, _, r) if matches!(**r, Expr::Binary(BinOp::And, ..))))
    );
    // postfix chains
    assert!(
        matches!(ast("a.b[0].first()"), Expr::Call(Some(t), Func::First, args)
        if args.is_empty() && matches!(*t, Expr::Index(..)))
    );
    assert!(
        matches!(ast("x.ofType(FHIR.string)"), Expr::OfType(Some(_), spec, TypeFn::OfType)
        if spec.namespace.as_deref() == Some("FHIR") && spec.name == "string")
    );
    assert!(matches!(
        ast("where(true)"),
        Expr::Call(None, Func::Where, _)
    ));
    // a date-time's zone is part of the literal; a spaced minus is subtraction
    assert!(matches!(ast("@2019-01-01T10:00-05:00"), Expr::Literal(_)));
    assert!(matches!(
        ast("@2019-01-01 - 1 day"),
        Expr::Binary(BinOp::Sub, ..)
    ));
    assert!(matches!(ast("@2019-01-01-1"), Expr::Binary(BinOp::Sub, ..)));
    // comments and escapes
    assert!(matches!(
        ast("1 /* x */ + // y\n 2"),
        Expr::Binary(BinOp::Add, ..)
    ));
    assert!(
        matches!(ast("'it\\'s \\u00e9'"), Expr::Literal(crate::Literal::String(s)) if s == "it's é")
    );
    assert!(matches!(ast("`div`"), Expr::Ident(s) if s == "div"));
    assert!(matches!(ast("%`vs-x`"), Expr::Env(s) if s == "vs-x"));
    // unknown functions and wrong arities are parse errors
    assert!(Expression::parse("a.frobnicate()").is_err());
    assert!(Expression::parse("a.substring()").is_err());
    assert!(Expression::parse("a.where(b, c)").is_err());
}

#[test]
fn distinct_over_many_strings_is_not_quadratic() {
    // bdl-7 on a big Bundle: `isDistinct()` over one computed string per entry.
    let entries: Vec<Value> = (0..20_000)
        .map(|i| json!({"fullUrl": format!("urn:x:{i}")}))
        .collect();
    let mut bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": entries});
    let start = std::time::Instant::now();
    assert_eq!(
        eval("entry.select(fullUrl & 'v').isDistinct()", &bundle),
        ["true"]
    );
    assert_eq!(
        eval("entry.select(fullUrl & 'v').distinct().count()", &bundle),
        ["20000"]
    );
    bundle["entry"][19_999]["fullUrl"] = json!("urn:x:7");
    assert_eq!(
        eval("entry.select(fullUrl & 'v').isDistinct()", &bundle),
        ["false"]
    );
    assert_eq!(
        eval("entry.select(fullUrl & 'v').distinct().count()", &bundle),
        ["19999"]
    );
    // que-2: string nodes of the input (linkIds), not computed strings.
    let items: Vec<Value> = (0..20_000)
        .map(|i| json!({"linkId": format!("q{i}"), "type": "string"}))
        .collect();
    let mut q = json!({"resourceType": "Questionnaire", "status": "draft", "item": items});
    assert_eq!(eval("descendants().linkId.isDistinct()", &q), ["true"]);
    q["item"][5]["linkId"] = json!("q6");
    assert_eq!(eval("descendants().linkId.isDistinct()", &q), ["false"]);
    // Mixed collections keep the general comparison.
    assert_eq!(eval1("(1 | 1.0 | 'a' | 'a').count()"), ["2"]);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}
