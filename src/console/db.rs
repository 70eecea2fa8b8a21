//! The console's database behind one interface: SQLite (embedded, the default) or PostgreSQL
//! (a city-wide install). Both take the same SQL text with `$1, $2, …` placeholders; the few
//! words that differ in the schema (`{BLOB}`, `{ID}`) are filled in per backend. Values go in
//! and come out as [`Val`], so the code above never sees which backend it talks to.

use std::sync::Arc;

use anyhow::{bail, Context};
use tokio_postgres::types::{IsNull, ToSql, Type};

/// One SQL value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Val {
    pub fn int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            Val::Real(f) => Some(*f as i64),
            _ => None,
        }
    }
    pub fn text(&self) -> Option<&str> {
        match self {
            Val::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn string(&self) -> String {
        self.text().unwrap_or_default().to_string()
    }
    pub fn blob(self) -> Option<Vec<u8>> {
        match self {
            Val::Blob(b) => Some(b),
            _ => None,
        }
    }
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Text(s.to_string())
    }
}
impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Text(s)
    }
}
impl From<&String> for Val {
    fn from(s: &String) -> Val {
        Val::Text(s.clone())
    }
}
impl From<i64> for Val {
    fn from(i: i64) -> Val {
        Val::Int(i)
    }
}
impl From<f64> for Val {
    fn from(f: f64) -> Val {
        Val::Real(f)
    }
}
impl From<Vec<u8>> for Val {
    fn from(b: Vec<u8>) -> Val {
        Val::Blob(b)
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(o: Option<T>) -> Val {
        o.map_or(Val::Null, Into::into)
    }
}

/// A statement and its parameters.
pub type Stmt = (&'static str, Vec<Val>);
pub type Row = Vec<Val>;

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<std::sync::Mutex<rusqlite::Connection>>),
    Postgres(Arc<tokio::sync::Mutex<PgConn>>),
}

/// A PostgreSQL connection with its prepared statements (tokio-postgres keeps none itself).
struct PgConn {
    client: tokio_postgres::Client,
    prepared: std::collections::HashMap<&'static str, tokio_postgres::Statement>,
}

impl PgConn {
    async fn statement(&mut self, sql: &'static str) -> anyhow::Result<tokio_postgres::Statement> {
        if let Some(st) = self.prepared.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql).await.with_context(|| format!("SQL: {sql}"))?;
        self.prepared.insert(sql, st.clone());
        Ok(st)
    }
}

/// A connection to the console's database.
#[derive(Clone)]
pub struct Db {
    backend: Backend,
}

/// `$3` → `?3` (SQLite's numbered parameters); everything else unchanged.
fn sqlite_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

impl Db {
    /// `sqlite:PATH` (or a plain path) or `postgres://…` / `postgresql://…`.
    pub async fn open(url: &str) -> anyhow::Result<Db> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.with_context(|| format!("cannot connect to PostgreSQL at {}", redact(url)))?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::error!("PostgreSQL connection lost: {e}");
                }
            });
            Db { backend: Backend::Postgres(Arc::new(tokio::sync::Mutex::new(PgConn { client, prepared: Default::default() }))) }
        } else {
            let path = url.strip_prefix("sqlite:").unwrap_or(url).to_string();
            if path.is_empty() {
                bail!("database {url:?}: no path");
            }
            let conn = tokio::task::spawn_blocking(move || -> anyhow::Result<rusqlite::Connection> {
                let conn = rusqlite::Connection::open(&path).with_context(|| format!("cannot open SQLite database {path}"))?;
                // WAL + NORMAL: a committed transaction survives a crash of the console;
                // `PRAGMA synchronous=FULL` would also survive a power cut, at a fsync per commit
                conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;")?;
                Ok(conn)
            })
            .await??;
            Db { backend: Backend::Sqlite(Arc::new(std::sync::Mutex::new(conn))) }
        };
        Ok(db)
    }

    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Runs a schema script: statements separated by `;`, `{BLOB}` and `{ID}` filled in.
    pub async fn migrate(&self, script: &str) -> anyhow::Result<()> {
        let (blob, id) = match self.backend {
            Backend::Sqlite(_) => ("BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT"),
            Backend::Postgres(_) => ("BYTEA", "BIGSERIAL PRIMARY KEY"),
        };
        let script = script.replace("{BLOB}", blob).replace("{ID}", id);
        match &self.backend {
            Backend::Sqlite(c) => {
                let c = c.clone();
                tokio::task::spawn_blocking(move || c.lock().unwrap().execute_batch(&script)).await??;
            }
            Backend::Postgres(c) => c.lock().await.client.batch_execute(&script).await?,
        }
        Ok(())
    }

    /// Executes one statement; returns the rows it changed.
    pub async fn exec(&self, sql: &'static str, params: Vec<Val>) -> anyhow::Result<u64> {
        let n = self.tx(vec![(sql, params)]).await?;
        Ok(n[0])
    }

    /// Executes statements in one transaction: all or nothing. Returns each one's row count.
    pub async fn tx(&self, stmts: Vec<Stmt>) -> anyhow::Result<Vec<u64>> {
        match &self.backend {
            Backend::Sqlite(c) => {
                let c = c.clone();
                tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u64>> {
                    let mut conn = c.lock().unwrap();
                    let tx = conn.transaction()?;
                    let mut counts = Vec::with_capacity(stmts.len());
                    for (sql, params) in &stmts {
                        let mut st = tx.prepare_cached(&sqlite_sql(sql)).with_context(|| format!("SQL: {sql}"))?;
                        let n = st.execute(rusqlite::params_from_iter(params.iter().map(to_sqlite)))?;
                        counts.push(n as u64);
                    }
                    tx.commit()?;
                    Ok(counts)
                })
                .await?
            }
            Backend::Postgres(c) => {
                let mut conn = c.lock().await;
                let mut prepared = Vec::with_capacity(stmts.len());
                for (sql, _) in &stmts {
                    prepared.push(conn.statement(sql).await?);
                }
                let tx = conn.client.transaction().await?;
                let mut counts = Vec::with_capacity(stmts.len());
                for ((_, params), st) in stmts.iter().zip(&prepared) {
                    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                    counts.push(tx.execute(st, &refs).await?);
                }
                tx.commit().await?;
                Ok(counts)
            }
        }
    }

    /// Runs a query and returns its rows.
    pub async fn query(&self, sql: &'static str, params: Vec<Val>) -> anyhow::Result<Vec<Row>> {
        match &self.backend {
            Backend::Sqlite(c) => {
                let c = c.clone();
                tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Row>> {
                    let conn = c.lock().unwrap();
                    let mut st = conn.prepare_cached(&sqlite_sql(sql)).with_context(|| format!("SQL: {sql}"))?;
                    let n = st.column_count();
                    let mut rows = st.query(rusqlite::params_from_iter(params.iter().map(to_sqlite)))?;
                    let mut out = Vec::new();
                    while let Some(r) = rows.next()? {
                        out.push((0..n).map(|i| from_sqlite(r.get_ref(i).expect("column in range"))).collect());
                    }
                    Ok(out)
                })
                .await?
            }
            Backend::Postgres(c) => {
                let mut conn = c.lock().await;
                let st = conn.statement(sql).await?;
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                let rows = conn.client.query(&st, &refs).await?;
                rows.iter().map(from_pg_row).collect()
            }
        }
    }

    /// The first column of the first row, if any.
    pub async fn scalar(&self, sql: &'static str, params: Vec<Val>) -> anyhow::Result<Val> {
        Ok(self.query(sql, params).await?.into_iter().next().and_then(|r| r.into_iter().next()).unwrap_or(Val::Null))
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db` for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

fn to_sqlite(v: &Val) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        Val::Null => Value::Null,
        Val::Int(i) => Value::Integer(*i),
        Val::Real(f) => Value::Real(*f),
        Val::Text(s) => Value::Text(s.clone()),
        Val::Blob(b) => Value::Blob(b.clone()),
    }
}

fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Val {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::Int(i),
        ValueRef::Real(f) => Val::Real(f),
        ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Val::Blob(b.to_vec()),
    }
}

fn from_pg_row(r: &tokio_postgres::Row) -> anyhow::Result<Row> {
    let mut out = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let t = col.type_();
        let v = if *t == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map_or(Val::Null, Val::Int)
        } else if *t == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?.map_or(Val::Null, |x| Val::Int(x.into()))
        } else if *t == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)?.map_or(Val::Null, |x| Val::Int(x.into()))
        } else if *t == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i)?.map_or(Val::Null, Val::Real)
        } else if *t == Type::FLOAT4 {
            r.try_get::<_, Option<f32>>(i)?.map_or(Val::Null, |x| Val::Real(x.into()))
        } else if *t == Type::NUMERIC {
            bail!("column {}: NUMERIC is not used by the console; cast it", col.name())
        } else if *t == Type::BYTEA {
            r.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Val::Null, Val::Blob)
        } else if *t == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)?.map_or(Val::Null, |b| Val::Int(b.into()))
        } else {
            r.try_get::<_, Option<String>>(i).with_context(|| format!("column {} ({t})", col.name()))?.map_or(Val::Null, Val::Text)
        };
        out.push(v);
    }
    Ok(out)
}

impl ToSql for Val {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            Val::Int(i) if *ty == Type::FLOAT8 => (*i as f64).to_sql(ty, out),
            Val::Int(i) if *ty == Type::BOOL => (*i != 0).to_sql(ty, out),
            Val::Int(i) => i.to_sql(ty, out),
            Val::Real(f) => f.to_sql(ty, out),
            Val::Text(s) => s.as_str().to_sql(ty, out),
            Val::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parameters_become_sqlite_ones() {
        assert_eq!(sqlite_sql("SELECT a FROM t WHERE b = $1 AND c = $12 AND d = '$x'"), "SELECT a FROM t WHERE b = ?1 AND c = ?12 AND d = '$x'");
    }

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(redact("postgres://ops:s3cret@db.city:5432/console"), "postgres://ops:***@db.city:5432/console");
        assert_eq!(redact("postgres://ops@db/console"), "postgres://ops@db/console");
    }
}
