//! `genesis._native`: the compiled Avro decoder of genesis.
//!
//! A [`Schema`] compiles an Avro writer schema once; its `decode*` methods turn Avro binary
//! data into the same Python objects as fastavro's `schemaless_reader` (values, types, key
//! order). `read_container` splits an Object Container File into its blocks and
//! `wire_schema_id` reads the Confluent wire-format header. Bad data raises `DecodeError`
//! (a `ValueError`), an invalid schema `SchemaError`.

mod container;
mod decode;
mod schema;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use decode::{message, Ctx, Helpers};
use schema::Compiled;

pyo3::create_exception!(
    genesis._native,
    DecodeError,
    PyValueError,
    "Avro data, a container or a wire-format header that cannot be decoded."
);
pyo3::create_exception!(genesis._native, SchemaError, PyValueError, "An invalid Avro schema.");

const DEFAULT_WHAT: &str = "Avro data";

/// An Avro writer schema, compiled for decoding. Pickles as its JSON text.
#[pyclass(frozen, module = "genesis._native")]
struct Schema {
    source: Py<PyAny>,
    compiled: Compiled,
    helpers: Option<Helpers>,
    name: String,
}

fn span(buf: &[u8], start: usize, end: Option<usize>) -> PyResult<usize> {
    let end = end.unwrap_or(buf.len());
    if start > end || end > buf.len() {
        return Err(PyValueError::new_err(format!(
            "the span {start}..{end} is not inside the buffer of {} bytes",
            buf.len()
        )));
    }
    Ok(end)
}

impl Schema {
    fn ctx<'a, 'py>(&'a self, py: Python<'py>, buf: &'a [u8], pos: usize) -> Ctx<'a, 'py> {
        Ctx::new(py, &self.compiled, self.helpers.as_ref(), buf, pos)
    }

    fn record(&self, method: &str) -> PyResult<&schema::Record> {
        self.compiled.root_record().ok_or_else(|| {
            PyValueError::new_err(format!("{method} needs a record schema, and {} is not a record", self.name))
        })
    }

    /// `count` records must fit in `len` bytes, each taking at least the root's minimum size
    /// (checked before looping; a single record short of bytes is reported as truncated).
    fn check_count(&self, count: usize, len: usize, what: &str) -> PyResult<()> {
        if count <= 1 {
            return Ok(());
        }
        let min = self.compiled.min_size[self.compiled.root as usize];
        let fits = if min > 0 { count as u64 <= len as u64 / min } else { count as u64 <= decode::MAX_EMPTY_ITEMS };
        if !fits {
            return Err(DecodeError::new_err(format!("corrupt {what}: it claims {count} records in only {len} bytes")));
        }
        Ok(())
    }

    fn trailing(&self, used: usize, end: usize, count: usize, what: &str) -> PyResult<()> {
        if used < end {
            let after = if count == 1 { "its record".to_string() } else { format!("its {count} records") };
            return Err(DecodeError::new_err(format!(
                "{what} has {} bytes of trailing garbage after {after}",
                end - used
            )));
        }
        Ok(())
    }
}

#[pymethods]
impl Schema {
    #[new]
    fn new(py: Python<'_>, schema_json: &Bound<'_, PyAny>) -> PyResult<Self> {
        if !(schema_json.is_instance_of::<PyString>() || schema_json.is_instance_of::<PyBytes>()) {
            return Err(PyTypeError::new_err("Schema() takes the schema's JSON text (str or bytes)"));
        }
        let parsed = py
            .import("json")?
            .call_method1("loads", (schema_json,))
            .map_err(|e| SchemaError::new_err(format!("the schema is not valid JSON: {}", e.value(py))))?;
        let compiled =
            schema::compile(py, &parsed).map_err(|e| SchemaError::new_err(format!("invalid Avro schema: {e}")))?;
        let helpers = if compiled.has_logical { Some(Helpers::new(py)?) } else { None };
        let name = compiled.root_name();
        Ok(Schema { source: schema_json.clone().unbind(), compiled, helpers, name })
    }

    /// The top-level record's field names, in order (`[]` when the top level is not a record).
    #[getter]
    fn field_names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        match self.compiled.root_record() {
            Some(r) => PyList::new(py, r.fields.iter().map(|f| f.name.bind(py).clone())),
            None => Ok(PyList::empty(py)),
        }
    }

    /// The full name of the top-level type (a record's name, else the type's).
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The schema's JSON text, as given.
    #[getter]
    fn json<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.source.bind(py).clone()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let args = PyTuple::new(py, [slf.get().source.bind(py).clone()])?;
        PyTuple::new(py, [slf.get_type().into_any(), args.into_any()])
    }

    fn __repr__(&self) -> String {
        format!("<genesis._native.Schema {}>", self.name)
    }

    /// Decode `count` records laid end to end in `buf[start:end]`; they must fill it exactly.
    #[pyo3(signature = (buf, start=0, end=None, count=1, *, what=None))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        buf: &[u8],
        start: usize,
        end: Option<usize>,
        count: usize,
        what: Option<&str>,
    ) -> PyResult<Bound<'py, PyList>> {
        let what = what.unwrap_or(DEFAULT_WHAT);
        let end = span(buf, start, end)?;
        self.check_count(count, end - start, what)?;
        let mut ctx = self.ctx(py, &buf[..end], start);
        let list = PyList::empty(py);
        let root = self.compiled.root;
        for i in 0..count {
            let v = ctx.value(root).map_err(|_| message(py, ctx.fail.take(), what, &self.name, i + 1, count))?;
            list.append(v)?;
        }
        self.trailing(ctx.pos, end, count, what)?;
        Ok(list)
    }

    /// For each of `count` records in `buf[start:end]`: a dict of its first `nfields` fields and
    /// the position where field `nfields` starts; the other fields are skipped.
    #[pyo3(signature = (buf, start, end, count, nfields, *, what=None))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn decode_prefix<'py>(
        &self,
        py: Python<'py>,
        buf: &[u8],
        start: usize,
        end: Option<usize>,
        count: usize,
        nfields: usize,
        what: Option<&str>,
    ) -> PyResult<Bound<'py, PyList>> {
        let what = what.unwrap_or(DEFAULT_WHAT);
        let r = self.record("decode_prefix")?;
        let nfields = nfields.min(r.fields.len());
        let end = span(buf, start, end)?;
        self.check_count(count, end - start, what)?;
        let mut ctx = self.ctx(py, &buf[..end], start);
        let list = PyList::empty(py);
        for i in 0..count {
            let d = PyDict::new(py);
            let result = ctx.fields_into(r, &d, 0, nfields).and_then(|()| {
                let at = ctx.pos;
                ctx.skip_fields(r, nfields).map(|()| at)
            });
            let at = result.map_err(|_| message(py, ctx.fail.take(), what, &self.name, i + 1, count))?;
            list.append(decode::pair(py, d.into_any(), at)?)?;
        }
        self.trailing(ctx.pos, end, count, what)?;
        Ok(list)
    }

    /// The first `nfields` fields of the one record at `buf[start:]`, and where the next field
    /// starts; what follows is neither read nor checked (it may be missing).
    #[pyo3(signature = (buf, start, nfields, *, what=None))]
    fn decode_fields<'py>(
        &self,
        py: Python<'py>,
        buf: &[u8],
        start: usize,
        nfields: usize,
        what: Option<&str>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let what = what.unwrap_or(DEFAULT_WHAT);
        let r = self.record("decode_fields")?;
        let nfields = nfields.min(r.fields.len());
        span(buf, start, None)?;
        let mut ctx = self.ctx(py, buf, start);
        let d = PyDict::new(py);
        ctx.fields_into(r, &d, 0, nfields).map_err(|_| message(py, ctx.fail.take(), what, &self.name, 1, 1))?;
        decode::pair(py, d.into_any(), ctx.pos)
    }

    /// Decode fields `from_field..` of a record whose first fields `record` holds (from
    /// `decode_prefix` or `decode_fields`), starting at `pos`; returns where the record ends.
    #[pyo3(signature = (buf, pos, record, from_field, *, end=None, what=None))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn decode_rest(
        &self,
        py: Python<'_>,
        buf: &[u8],
        pos: usize,
        record: &Bound<'_, PyDict>,
        from_field: usize,
        end: Option<usize>,
        what: Option<&str>,
    ) -> PyResult<usize> {
        let what = what.unwrap_or(DEFAULT_WHAT);
        let r = self.record("decode_rest")?;
        let from = from_field.min(r.fields.len());
        let end = span(buf, pos, end)?;
        let mut ctx = self.ctx(py, &buf[..end], pos);
        ctx.fields_into(r, record, from, r.fields.len())
            .map_err(|_| message(py, ctx.fail.take(), what, &self.name, 1, 1))?;
        Ok(ctx.pos)
    }
}

/// Split an Avro Object Container File: `(schema JSON, [(record count, data, start, end)])`
/// where `data` is `buf` itself for the null codec, else the inflated block.
#[pyfunction]
fn read_container<'py>(py: Python<'py>, buf: &Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyTuple>> {
    let bytes = buf.as_bytes();
    // Inflating compressed blocks is pure Rust on the bytes of an immutable `bytes` object that
    // `buf` keeps alive: other Python threads may run meanwhile. Uncompressed containers (ZTF's)
    // are split in far less time than releasing and taking the GIL back costs.
    let c = if container::is_compressed(bytes) {
        py.detach(|| container::read_container(bytes))
    } else {
        container::read_container(bytes)
    };
    let c = c.map_err(|e| match e {
        container::CErr::Decode(text) => DecodeError::new_err(text),
        container::CErr::UnknownCodec(name) => {
            let repr = PyString::new(py, &name).repr().map(|r| r.to_string()).unwrap_or(name);
            DecodeError::new_err(format!(
                "the Avro container uses the unknown codec {repr}; genesis reads null, deflate, bzip2, xz, snappy, zstandard"
            ))
        }
    })?;
    let blocks = PyList::empty(py);
    for b in c.blocks {
        let data = match &b.data {
            None => buf.clone(),
            Some(v) => PyBytes::new(py, v),
        };
        let item = (b.count, data, b.start, b.end).into_pyobject(py)?;
        blocks.append(item)?;
    }
    PyTuple::new(py, [PyBytes::new(py, c.schema).into_any(), blocks.into_any()])
}

/// The schema id of a Confluent wire-format message (magic byte 0 + 4-byte big-endian id).
#[pyfunction]
fn wire_schema_id(buf: &[u8]) -> PyResult<u32> {
    container::wire_schema_id(buf).map_err(DecodeError::new_err)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("DecodeError", py.get_type::<DecodeError>())?;
    m.add("SchemaError", py.get_type::<SchemaError>())?;
    m.add("MAX_DEPTH", decode::MAX_DEPTH)?;
    m.add("MAX_BLOCK_BYTES", container::MAX_BLOCK_BYTES)?;
    m.add("MAX_EMPTY_ITEMS", decode::MAX_EMPTY_ITEMS)?;
    m.add_class::<Schema>()?;
    m.add_function(wrap_pyfunction!(read_container, m)?)?;
    m.add_function(wrap_pyfunction!(wire_schema_id, m)?)?;
    Ok(())
}
