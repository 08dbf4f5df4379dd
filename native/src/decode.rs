//! Decoding Avro binary data with a compiled schema straight into Python objects.
//!
//! Values are built with the C API directly (cached interned keys, records copied from a
//! template dict, lists allocated at their final size), never through an intermediate Rust
//! value. Every length and count read from the data is checked against the bytes that are left
//! before anything is allocated; records nest at most [`MAX_DEPTH`] deep.

use std::os::raw::c_char;

use pyo3::exceptions::PyUnicodeDecodeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::schema::{Compiled, Decimal, Fast, Id, Logical, Node, Prim, Record, SkipOp};

/// Records, arrays and maps nest at most this deep (a recursive schema's data otherwise
/// could exhaust the stack); deeper data is corrupt for genesis.
pub const MAX_DEPTH: u32 = 2000;

/// At most this many values of a zero-byte type (null, empty record, fixed(0)) per call:
/// such values cost no input bytes, so only this bounds what a hostile count allocates.
pub const MAX_EMPTY_ITEMS: u64 = 1 << 20;

pub enum Fail {
    /// The data ends before the value does.
    Truncated(String),
    /// The data cannot be Avro (bad varint, negative length, absurd nesting or counts).
    Corrupt(String),
    /// The data is Avro but does not fit the schema (bad UTF-8, index out of range, a
    /// logical value Python cannot represent).
    Mismatch(String),
    /// A Python exception that is not about the data (MemoryError...), raised as it is.
    Py(PyErr),
}

/// Decoding stops with `Err(Stop)`; what went wrong is in `Ctx::fail` (or, for a failed
/// Python call, pending in the interpreter). A zero-sized error keeps every `R<Bound>` one
/// register wide, which matters on the path taken for each of the thousands of values of an alert.
pub struct Stop;

pub type R<T> = Result<T, Stop>;

/// Python's helpers for the logical types, looked up once per schema that has any.
pub struct Helpers {
    pub timedelta: Py<PyAny>,
    pub epoch: Py<PyAny>,
    pub epoch_naive: Py<PyAny>,
    pub fromordinal: Py<PyAny>,
    pub time: Py<PyAny>,
    pub uuid: Py<PyAny>,
    pub int_from_bytes: Py<PyAny>,
    pub context: Py<PyAny>,
}

impl Helpers {
    pub fn new(py: Python<'_>) -> PyResult<Helpers> {
        let dt = py.import("datetime")?;
        let datetime = dt.getattr("datetime")?;
        let utc = dt.getattr("timezone")?.getattr("utc")?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("tzinfo", utc)?;
        let epoch = datetime.call((1970, 1, 1), Some(&kwargs))?;
        let epoch_naive = datetime.call1((1970, 1, 1))?;
        Ok(Helpers {
            timedelta: dt.getattr("timedelta")?.unbind(),
            epoch: epoch.unbind(),
            epoch_naive: epoch_naive.unbind(),
            fromordinal: dt.getattr("date")?.getattr("fromordinal")?.unbind(),
            time: dt.getattr("time")?.unbind(),
            uuid: py.import("uuid")?.getattr("UUID")?.unbind(),
            int_from_bytes: py.get_type::<pyo3::types::PyInt>().getattr("from_bytes")?.unbind(),
            context: py.import("decimal")?.getattr("Context")?.unbind(),
        })
    }
}

pub struct Ctx<'a, 'py> {
    pub py: Python<'py>,
    nodes: &'a [Node],
    min_size: &'a [u64],
    helpers: Option<&'a Helpers>,
    /// The input, cut at the end of the span being decoded.
    buf: &'a [u8],
    pub pos: usize,
    depth: u32,
    empty_budget: u64,
    /// Why decoding stopped (`None`: a Python exception is pending).
    pub fail: Option<Fail>,
}

/// Wrap a new reference returned by the C API (NULL means a Python exception is set).
#[inline(always)]
fn own<'py>(py: Python<'py>, ptr: *mut ffi::PyObject) -> R<Bound<'py, PyAny>> {
    if ptr.is_null() {
        return Err(Stop); // the Python exception stays pending
    }
    // SAFETY: `ptr` is a new (owned), non-NULL reference just returned by a C-API constructor
    // called with the GIL held (we have `py`).
    Ok(unsafe { Bound::from_owned_ptr(py, ptr) })
}

#[inline(always)]
fn zigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

impl<'a, 'py> Ctx<'a, 'py> {
    pub fn new(py: Python<'py>, s: &'a Compiled, helpers: Option<&'a Helpers>, buf: &'a [u8], pos: usize) -> Self {
        Ctx {
            py,
            nodes: &s.nodes,
            min_size: &s.min_size,
            helpers,
            buf,
            pos,
            depth: 0,
            empty_budget: MAX_EMPTY_ITEMS,
            fail: None,
        }
    }

    #[cold]
    #[inline(never)]
    fn set(&mut self, fail: Fail) -> Stop {
        self.fail = Some(fail);
        Stop
    }

    #[inline(always)]
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline(always)]
    fn long(&mut self, what: &'static str) -> R<i64> {
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(zigzag(b as u64));
            }
        }
        self.long_multi(what)
    }

    #[inline(never)]
    fn long_multi(&mut self, what: &'static str) -> R<i64> {
        let start = self.pos;
        let mut result: u64 = 0;
        let mut shift: u32 = 0;
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.set(Fail::Truncated(format!("the {what} at byte {start} is cut off"))));
            };
            self.pos += 1;
            result |= ((b & 0x7F) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(zigzag(result));
            }
            shift += 7;
            if self.pos - start >= 10 {
                return Err(self.set(Fail::Corrupt(format!("the {what} at byte {start} is not a valid varint"))));
            }
        }
    }

    /// A length prefix: non-negative and no more than the bytes left.
    #[inline(always)]
    fn length(&mut self, what: &'static str) -> R<usize> {
        let at = self.pos;
        let n = self.long(what)?;
        if n < 0 {
            return Err(self.set(Fail::Corrupt(format!("negative length {n} of the {what} at byte {at}"))));
        }
        if n as u64 > self.left() as u64 {
            return Err(
                self.set(Fail::Truncated(format!("the {what} at byte {at} needs {n} bytes, {} are left", self.left())))
            );
        }
        Ok(n as usize)
    }

    #[inline(always)]
    fn take(&mut self, n: usize, what: &'static str) -> R<&'a [u8]> {
        if n > self.left() {
            return Err(self.set(Fail::Truncated(format!(
                "the {what} at byte {} needs {n} bytes, {} are left",
                self.pos,
                self.left()
            ))));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline(always)]
    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(
                self.set(Fail::Corrupt(format!("values nest deeper than {MAX_DEPTH} levels at byte {}", self.pos)))
            );
        }
        Ok(())
    }

    /// The item count of an array or map block: `count` items of at least `min` bytes each
    /// must fit in the bytes left; zero-byte items draw on a per-call budget.
    fn check_count(&mut self, count: u64, min: u64, at: usize, what: &str) -> R<()> {
        if min > 0 {
            if count > self.left() as u64 / min {
                return Err(self.set(Fail::Truncated(format!(
                    "the {what} block at byte {at} claims {count} items of at least {min} bytes, {} bytes are left",
                    self.left()
                ))));
            }
        } else {
            if count > self.empty_budget {
                return Err(self.set(Fail::Corrupt(format!(
                    "the {what} block at byte {at} claims {count} items of a zero-byte type (at most {MAX_EMPTY_ITEMS} are read)"
                ))));
            }
            self.empty_budget -= count;
        }
        Ok(())
    }

    /// The next block count of an array or map (0 ends it); a negative count is followed by
    /// the block's byte size, which is read and not trusted.
    #[inline(always)]
    fn block_count(&mut self, what: &'static str) -> R<u64> {
        let at = self.pos;
        let n = self.long(what)?;
        if n >= 0 {
            return Ok(n as u64);
        }
        if n == i64::MIN {
            return Err(self.set(Fail::Corrupt(format!("the {what} at byte {at} is out of range"))));
        }
        self.long(what)?;
        Ok(n.unsigned_abs())
    }

    #[inline(always)]
    fn index(&mut self, len: usize, what: &'static str) -> R<usize> {
        let at = self.pos;
        let i = self.long(what)?;
        if i < 0 || i as u64 >= len as u64 {
            return Err(self.bad_index(i, len, at, what));
        }
        Ok(i as usize)
    }

    #[cold]
    #[inline(never)]
    fn bad_index(&mut self, i: i64, len: usize, at: usize, what: &str) -> Stop {
        self.set(Fail::Mismatch(format!("a union or enum index is out of range ({what} {i} of {len} at byte {at})")))
    }

    /// A primitive value (also the non-null branch of a [`Node::Opt`]).
    #[inline(always)]
    fn prim(&mut self, prim: Prim) -> R<Bound<'py, PyAny>> {
        let py = self.py;
        // SAFETY (every `unsafe` below): plain C-API constructors called with the GIL held;
        // `own` turns their result into an owned reference or a pending Python error.
        match prim {
            Prim::Double => {
                let s = self.take(8, "double")?;
                let v = f64::from_le_bytes(s.try_into().expect("8 bytes"));
                own(py, unsafe { ffi::PyFloat_FromDouble(v) })
            }
            Prim::Float => {
                let s = self.take(4, "float")?;
                let v = f32::from_le_bytes([s[0], s[1], s[2], s[3]]) as f64;
                own(py, unsafe { ffi::PyFloat_FromDouble(v) })
            }
            Prim::Long => {
                let v = self.long("long")?;
                own(py, unsafe { ffi::PyLong_FromLongLong(v) })
            }
            Prim::String => self.string(),
            Prim::Boolean => {
                let b = self.take(1, "boolean")?[0];
                own(py, unsafe { ffi::PyBool_FromLong((b != 0) as std::os::raw::c_long) })
            }
            Prim::Bytes => {
                let n = self.length("length of a bytes value")?;
                self.bytes(n, "bytes value")
            }
        }
    }

    #[inline(always)]
    fn string(&mut self) -> R<Bound<'py, PyAny>> {
        let n = self.length("length of a string")?;
        let at = self.pos;
        let s = &self.buf[at..at + n];
        self.pos += n;
        // SAFETY: `s` is a valid slice of `n` bytes; the GIL is held (`self.py`).
        let ptr =
            unsafe { ffi::PyUnicode_DecodeUTF8(s.as_ptr() as *const c_char, n as ffi::Py_ssize_t, c"strict".as_ptr()) };
        if ptr.is_null() {
            let fail = self.utf8_error(at);
            return Err(self.set(fail));
        }
        own(self.py, ptr)
    }

    #[cold]
    fn utf8_error(&self, at: usize) -> Fail {
        let err = PyErr::fetch(self.py);
        if err.is_instance_of::<PyUnicodeDecodeError>(self.py) {
            Fail::Mismatch(format!("a string is not valid UTF-8 (the string at byte {at}: {err})"))
        } else {
            Fail::Py(err)
        }
    }

    #[inline(always)]
    fn bytes(&mut self, n: usize, what: &'static str) -> R<Bound<'py, PyAny>> {
        let s = self.take(n, what)?;
        // SAFETY: `s` is a valid slice of `n` bytes; the GIL is held.
        own(self.py, unsafe { ffi::PyBytes_FromStringAndSize(s.as_ptr() as *const c_char, n as ffi::Py_ssize_t) })
    }

    /// Decode one value of node `id`.
    pub fn value(&mut self, id: Id) -> R<Bound<'py, PyAny>> {
        let py = self.py;
        match &self.nodes[id as usize] {
            Node::Opt { null, prim } => {
                let i = self.index(2, "union index")?;
                if i == *null as usize {
                    Ok(py.None().into_bound(py))
                } else {
                    self.prim(*prim)
                }
            }
            Node::Null => Ok(py.None().into_bound(py)),
            Node::Boolean => self.prim(Prim::Boolean),
            Node::Long => self.prim(Prim::Long),
            Node::Float => self.prim(Prim::Float),
            Node::Double => self.prim(Prim::Double),
            Node::String => self.prim(Prim::String),
            Node::Bytes => self.prim(Prim::Bytes),
            Node::Fixed(n) => self.bytes(*n, "fixed value"),
            Node::Enum(symbols) => {
                let i = self.index(symbols.len(), "enum index")?;
                Ok(symbols[i].bind(py).clone().into_any())
            }
            Node::Union(branches) => {
                let i = self.index(branches.len(), "union index")?;
                self.value(branches[i])
            }
            Node::Record(r) => self.record(r),
            Node::Array(items) => self.array(*items),
            Node::Map(values) => self.map(*values),
            Node::Logical(kind) => self.logical(*kind),
            Node::Decimal(dec) => self.decimal(dec),
            Node::Pending => unreachable!("a compiled schema has no pending node"),
        }
    }

    pub fn record(&mut self, r: &Record) -> R<Bound<'py, PyAny>> {
        self.enter()?;
        // SAFETY: the template is a dict owned by the schema; the GIL is held.
        let d = own(self.py, unsafe { ffi::PyDict_Copy(r.template.as_ptr()) })?;
        // SAFETY: Py_None returns the (borrowed) None singleton; only its address is compared.
        let none = unsafe { ffi::Py_None() };
        let py = self.py;
        for f in r.fields.iter() {
            let v = match f.fast {
                Fast::Opt { null, prim } => {
                    if self.index(2, "union index")? == null as usize {
                        if r.unique_names {
                            continue; // the copy of the template already holds None there
                        }
                        py.None().into_bound(py)
                    } else {
                        self.prim(prim)?
                    }
                }
                Fast::Prim(prim) => self.prim(prim)?,
                Fast::Other => {
                    let v = self.value(f.node)?;
                    if r.unique_names && v.as_ptr() == none {
                        continue;
                    }
                    v
                }
            };
            // SAFETY: `d` is a dict, key and value are live references; SetItem does not steal.
            if unsafe { ffi::PyDict_SetItem(d.as_ptr(), f.name.as_ptr(), v.as_ptr()) } < 0 {
                return Err(Stop);
            }
        }
        self.depth -= 1;
        Ok(d)
    }

    fn array(&mut self, items: Id) -> R<Bound<'py, PyAny>> {
        self.enter()?;
        let py = self.py;
        let min = self.min_size[items as usize];
        let at = self.pos;
        let first = self.block_count("array block count")?;
        self.check_count(first, min, at, "array")?;
        // SAFETY: `first` fits in the bytes left (or the zero-byte budget), so in isize; GIL held.
        let list = own(py, unsafe { ffi::PyList_New(first as ffi::Py_ssize_t) })?;
        for i in 0..first {
            let v = self.value(items)?;
            // SAFETY: `i` < the list's length; SetItem steals the new reference `v` gives up.
            // A list with unset (NULL) slots is safe to free if we fail before filling it.
            if unsafe { ffi::PyList_SetItem(list.as_ptr(), i as ffi::Py_ssize_t, v.into_ptr()) } < 0 {
                return Err(Stop);
            }
        }
        if first > 0 {
            loop {
                let at = self.pos;
                let n = self.block_count("array block count")?;
                if n == 0 {
                    break;
                }
                self.check_count(n, min, at, "array")?;
                for _ in 0..n {
                    let v = self.value(items)?;
                    // SAFETY: `list` is a list; Append does not steal (`v` is dropped after).
                    if unsafe { ffi::PyList_Append(list.as_ptr(), v.as_ptr()) } < 0 {
                        return Err(Stop);
                    }
                }
            }
        }
        self.depth -= 1;
        Ok(list)
    }

    fn map(&mut self, values: Id) -> R<Bound<'py, PyAny>> {
        self.enter()?;
        let py = self.py;
        let min = self.min_size[values as usize].saturating_add(1);
        // SAFETY: GIL held.
        let d = own(py, unsafe { ffi::PyDict_New() })?;
        loop {
            let at = self.pos;
            let n = self.block_count("map block count")?;
            if n == 0 {
                break;
            }
            self.check_count(n, min, at, "map")?;
            for _ in 0..n {
                let k = self.string()?;
                let v = self.value(values)?;
                // SAFETY: `d` is a dict, `k` a str, both live; SetItem does not steal.
                if unsafe { ffi::PyDict_SetItem(d.as_ptr(), k.as_ptr(), v.as_ptr()) } < 0 {
                    return Err(Stop);
                }
            }
        }
        self.depth -= 1;
        Ok(d)
    }

    fn helpers(&self) -> &'a Helpers {
        self.helpers.expect("a schema with logical types has its helpers")
    }

    /// A Python exception raised by a logical type's conversion becomes a mismatch.
    fn convert_error(&self, err: PyErr, what: String) -> Fail {
        let py = self.py;
        if err.is_instance_of::<pyo3::exceptions::PyMemoryError>(py) {
            return Fail::Py(err);
        }
        Fail::Mismatch(format!("{what}: {}", err.value(py)))
    }

    #[inline(never)]
    fn logical(&mut self, kind: Logical) -> R<Bound<'py, PyAny>> {
        let py = self.py;
        let at = self.pos;
        if kind == Logical::Uuid {
            let s = self.string()?;
            let h = self.helpers();
            return match h.uuid.bind(py).call1((s,)) {
                Ok(v) => Ok(v),
                Err(e) => {
                    let fail = self.convert_error(e, format!("the uuid at byte {at} is not valid"));
                    Err(self.set(fail))
                }
            };
        }
        let v = self.long("long")?;
        let h = self.helpers();
        let name = match kind {
            Logical::TimestampMillis => "timestamp-millis",
            Logical::TimestampMicros => "timestamp-micros",
            Logical::LocalTimestampMillis => "local-timestamp-millis",
            Logical::LocalTimestampMicros => "local-timestamp-micros",
            Logical::Date => "date",
            Logical::TimeMillis => "time-millis",
            Logical::TimeMicros => "time-micros",
            Logical::Uuid => unreachable!(),
        };
        let result = match kind {
            // fastavro: epoch + timedelta(microseconds=v) (v * 1000 for millis)
            Logical::TimestampMillis
            | Logical::LocalTimestampMillis
            | Logical::TimestampMicros
            | Logical::LocalTimestampMicros => {
                let td = match kind {
                    Logical::TimestampMillis | Logical::LocalTimestampMillis => {
                        h.timedelta.bind(py).call1((0, 0, 0, v))
                    }
                    _ => h.timedelta.bind(py).call1((0, 0, v)),
                };
                let epoch = match kind {
                    Logical::TimestampMillis | Logical::TimestampMicros => h.epoch.bind(py),
                    _ => h.epoch_naive.bind(py),
                };
                td.and_then(|td| epoch.add(td))
            }
            // fastavro: date.fromordinal(v + 719163)
            Logical::Date => h.fromordinal.bind(py).call1(((v as i128) + 719163,)),
            // fastavro: time(int(v / H), int(v / M) % 60, int(v / S) % 60, (v % S) * unit)
            Logical::TimeMillis | Logical::TimeMicros => {
                let (per_h, per_m, per_s, unit) = if kind == Logical::TimeMillis {
                    (3_600_000i64, 60_000i64, 1000i64, 1000i64)
                } else {
                    (3_600_000_000, 60_000_000, 1_000_000, 1)
                };
                let hour = v / per_h; // truncation, as int() of the quotient (see the notes)
                let minute = (v / per_m).rem_euclid(60);
                let second = (v / per_s).rem_euclid(60);
                let micro = v.rem_euclid(per_s) * unit;
                h.time.bind(py).call1((hour, minute, second, micro))
            }
            Logical::Uuid => unreachable!(),
        };
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                let fail = self.convert_error(e, format!("the {name} value {v} at byte {at} cannot be converted"));
                Err(self.set(fail))
            }
        }
    }

    #[inline(never)]
    fn decimal(&mut self, dec: &Decimal) -> R<Bound<'py, PyAny>> {
        let py = self.py;
        let at = self.pos;
        let n = match dec.fixed {
            Some(n) => n,
            None => self.length("length of a bytes value")?,
        };
        let data = self.take(n, "decimal value")?;
        let h = self.helpers();
        let result = (|| -> PyResult<Bound<'py, PyAny>> {
            let Some(precision) = dec.precision else {
                return Err(pyo3::exceptions::PyValueError::new_err("the decimal's schema has no precision"));
            };
            let kwargs = PyDict::new(py);
            kwargs.set_item("signed", true)?;
            let unscaled =
                h.int_from_bytes.bind(py).call((pyo3::types::PyBytes::new(py, data), "big"), Some(&kwargs))?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("prec", precision)?;
            let ctx = h.context.bind(py).call((), Some(&kwargs))?;
            let d = ctx.call_method1("create_decimal", (unscaled,))?;
            d.call_method1("scaleb", (-dec.scale, ctx))
        })();
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                let fail = self.convert_error(e, format!("the decimal at byte {at} cannot be converted"));
                Err(self.set(fail))
            }
        }
    }

    // ---- skipping: the same walk and the same checks, without building objects ----

    pub fn skip(&mut self, id: Id) -> R<()> {
        match &self.nodes[id as usize] {
            Node::Opt { null, prim } => {
                let i = self.index(2, "union index")?;
                if i == *null as usize {
                    return Ok(());
                }
                match prim {
                    Prim::Boolean => self.take(1, "boolean").map(drop),
                    Prim::Long => self.long("long").map(drop),
                    Prim::Float => self.take(4, "float").map(drop),
                    Prim::Double => self.take(8, "double").map(drop),
                    Prim::String => self.skip_string(),
                    Prim::Bytes => {
                        let n = self.length("length of a bytes value")?;
                        self.pos += n;
                        Ok(())
                    }
                }
            }
            Node::Null => Ok(()),
            Node::Boolean => self.take(1, "boolean").map(drop),
            Node::Long => self.long("long").map(drop),
            Node::Logical(Logical::Uuid) => self.skip_string(),
            Node::Logical(_) => self.long("long").map(drop),
            Node::Float => self.take(4, "float").map(drop),
            Node::Double => self.take(8, "double").map(drop),
            Node::String => self.skip_string(),
            Node::Bytes => {
                let n = self.length("length of a bytes value")?;
                self.pos += n;
                Ok(())
            }
            Node::Fixed(n) => self.take(*n, "fixed value").map(drop),
            Node::Decimal(dec) => {
                let n = match dec.fixed {
                    Some(n) => n,
                    None => self.length("length of a bytes value")?,
                };
                self.take(n, "decimal value").map(drop)
            }
            Node::Enum(symbols) => self.index(symbols.len(), "enum index").map(drop),
            Node::Union(branches) => {
                let i = self.index(branches.len(), "union index")?;
                self.skip(branches[i])
            }
            Node::Record(r) => {
                self.enter()?;
                self.skip_plan(&r.skip)?;
                self.depth -= 1;
                Ok(())
            }
            Node::Array(items) => self.skip_blocks(*items, false),
            Node::Map(values) => self.skip_blocks(*values, true),
            Node::Pending => unreachable!("a compiled schema has no pending node"),
        }
    }

    /// Skip a record's fields by its flat plan (see [`SkipOp`]).
    fn skip_plan(&mut self, plan: &[SkipOp]) -> R<()> {
        for op in plan {
            match *op {
                SkipOp::OptBytes { null, size } => {
                    if self.index(2, "union index")? != null as usize {
                        self.take(size as usize, "value")?;
                    }
                }
                SkipOp::Bytes(n) => {
                    self.take(n as usize, "value")?;
                }
                SkipOp::OptVarint { null } => {
                    if self.index(2, "union index")? != null as usize {
                        self.long("long")?;
                    }
                }
                SkipOp::Varint => {
                    self.long("long")?;
                }
                SkipOp::OptStr { null } => {
                    if self.index(2, "union index")? != null as usize {
                        self.skip_string()?;
                    }
                }
                SkipOp::Str => self.skip_string()?,
                SkipOp::OptLen { null } => {
                    if self.index(2, "union index")? != null as usize {
                        let n = self.length("length of a bytes value")?;
                        self.pos += n;
                    }
                }
                SkipOp::Len => {
                    let n = self.length("length of a bytes value")?;
                    self.pos += n;
                }
                SkipOp::Node(id) => self.skip(id)?,
            }
        }
        Ok(())
    }

    fn skip_string(&mut self) -> R<()> {
        let n = self.length("length of a string")?;
        let at = self.pos;
        if let Err(e) = std::str::from_utf8(&self.buf[at..at + n]) {
            return Err(self.set(Fail::Mismatch(format!("a string is not valid UTF-8 (the string at byte {at}: {e})"))));
        }
        self.pos += n;
        Ok(())
    }

    fn skip_blocks(&mut self, item: Id, is_map: bool) -> R<()> {
        self.enter()?;
        let what = if is_map { "map" } else { "array" };
        let min = self.min_size[item as usize].saturating_add(is_map as u64);
        loop {
            let at = self.pos;
            let n = self.block_count(if is_map { "map block count" } else { "array block count" })?;
            if n == 0 {
                break;
            }
            self.check_count(n, min, at, what)?;
            for _ in 0..n {
                if is_map {
                    self.skip_string()?;
                }
                self.skip(item)?;
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// The first `nfields` fields of record `r` into a new dict.
    pub fn fields_into(&mut self, r: &Record, d: &Bound<'py, PyDict>, from: usize, to: usize) -> R<()> {
        self.enter()?;
        for f in &r.fields[from..to] {
            let v = self.value(f.node)?;
            // SAFETY: `d` is a dict, key and value live; SetItem does not steal.
            if unsafe { ffi::PyDict_SetItem(d.as_ptr(), f.name.as_ptr(), v.as_ptr()) } < 0 {
                return Err(Stop);
            }
        }
        self.depth -= 1;
        Ok(())
    }

    pub fn skip_fields(&mut self, r: &Record, from: usize) -> R<()> {
        self.enter()?;
        for f in &r.fields[from..] {
            self.skip(f.node)?;
        }
        self.depth -= 1;
        Ok(())
    }
}

/// How a failure of record `i` (1-based) of `count` in `what` reads, in the wording of
/// genesis' pure-Python path (`genesis._codecs._avro.read_records`).
pub fn message(py: Python<'_>, fail: Option<Fail>, what: &str, schema_name: &str, i: usize, count: usize) -> PyErr {
    let Some(fail) = fail else {
        return PyErr::fetch(py); // a failed Python call: its exception is pending
    };
    let text = match fail {
        Fail::Py(err) => return err,
        Fail::Truncated(d) => format!("truncated {what}: record {i} of {count} ends early ({d})"),
        Fail::Corrupt(d) => format!("corrupt {what}: {d} (record {i} of {count})"),
        Fail::Mismatch(d) => format!("{what} does not match its schema {schema_name}: {d} (record {i} of {count})"),
    };
    crate::DecodeError::new_err(text)
}

pub fn pair<'py>(py: Python<'py>, d: Bound<'py, PyAny>, pos: usize) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, [d, pos.into_pyobject(py)?.into_any()])
}

#[allow(dead_code)]
pub fn new_str<'py>(py: Python<'py>, s: &str) -> Bound<'py, PyString> {
    PyString::new(py, s)
}
