//! Binding the shared search SQL's values ([`SqlValue`]: integer, double, text, NULL) to
//! the types PostgreSQL inferred for their placeholders. The shared SQL binds what SQLite's
//! loose typing accepts: an integer where a `double precision` column is compared (a
//! composite's µs range, a quantity bound), an integer for `substr`'s `integer` length, a
//! JSON array as text for `CAST(? AS jsonb)`. PostgreSQL is strict, so each value converts
//! to the placeholder's type here, exactly (an integer that does not fit, or text that is
//! not a number where one is expected, is an error, never a silent change).

use std::error::Error;

use bytes::{BufMut, BytesMut};
use caduceus_store_sql::SqlValue;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// A shared-SQL value bound to a PostgreSQL placeholder.
#[derive(Debug)]
pub(super) struct Bind<'a>(pub &'a SqlValue);

type BoxError = Box<dyn Error + Sync + Send>;

fn mismatch(value: &str, ty: &Type) -> BoxError {
    format!("a search {value} cannot be bound as {ty}").into()
}

impl ToSql for Bind<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self.0 {
            SqlValue::Null => Ok(IsNull::Yes),
            SqlValue::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                // µs instants and search bounds are far below 2^53: exact as doubles.
                #[allow(clippy::cast_precision_loss)]
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                    i.to_string().to_sql(ty, out)
                }
                _ => Err(mismatch("integer", ty)),
            },
            SqlValue::Real(r) => match *ty {
                Type::FLOAT8 => r.to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                    r.to_string().to_sql(ty, out)
                }
                _ => Err(mismatch("number", ty)),
            },
            SqlValue::Text(t) => match *ty {
                Type::JSONB => {
                    // jsonb's binary form: a version byte, then the JSON text.
                    out.put_u8(1);
                    out.put_slice(t.as_bytes());
                    Ok(IsNull::No)
                }
                Type::JSON => {
                    out.put_slice(t.as_bytes());
                    Ok(IsNull::No)
                }
                Type::INT8 => t.parse::<i64>()?.to_sql(ty, out),
                Type::FLOAT8 => t.parse::<f64>()?.to_sql(ty, out),
                _ => t.as_str().to_sql(ty, out),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
