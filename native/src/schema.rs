//! Compiling an Avro writer schema (JSON, parsed by Python's `json` module) into an array of
//! nodes that the decoder walks. Named types live at a fixed index, so a reference (and a
//! recursive type) is just that index. Name resolution, logical types and the schema checks
//! follow fastavro's `parse_schema`, so that a schema means the same thing to both decoders.

use std::collections::{HashMap, HashSet};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};

pub type Id = u32;

/// The logical types fastavro converts by default (its `LOGICAL_READERS`); any other
/// `logicalType` (or one on another base type) decodes as the underlying type, as there.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Logical {
    TimestampMillis,
    TimestampMicros,
    LocalTimestampMillis,
    LocalTimestampMicros,
    Date,
    TimeMillis,
    TimeMicros,
    Uuid,
}

pub struct Field {
    pub name: Py<PyString>,
    pub node: Id,
    /// How the record loop decodes this field without a call (set once the schema is compiled).
    pub fast: Fast,
}

/// A field's node as the record loop sees it: most fields of an alert are a primitive or a
/// union of null and a primitive, decoded inline; the rest go through the generic dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fast {
    Opt { null: u8, prim: Prim },
    Prim(Prim),
    Other,
}

pub struct Record {
    pub name: String,
    pub fields: Box<[Field]>,
    /// A dict of every field name (in order) to `None`: a decoded record starts as a copy of
    /// it, so filling it never resizes and the key order is the schema's.
    pub template: Py<PyDict>,
    /// No two fields share a name, so a field decoded as `None` can be left as the template
    /// has it (with a repeated name, a later `None` must overwrite an earlier value).
    pub unique_names: bool,
    /// The fields as a flat list of skipping steps (consecutive fixed-size fields merged).
    pub skip: Box<[SkipOp]>,
}

/// One step of skipping a record's fields without building objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipOp {
    /// `n` bytes (float, double, boolean, fixed; several in a row add up).
    Bytes(u32),
    /// One zig-zag varint (int, long and their logical types).
    Varint,
    /// A length and that many bytes (bytes, decimal on bytes).
    Len,
    /// A length and that many bytes of valid UTF-8 (string, uuid).
    Str,
    /// A union of null and a fixed-size primitive.
    OptBytes {
        null: u8,
        size: u8,
    },
    OptVarint {
        null: u8,
    },
    OptLen {
        null: u8,
    },
    OptStr {
        null: u8,
    },
    /// Anything else: the generic walk of node `Id`.
    Node(Id),
}

pub struct Decimal {
    /// `None` for bytes, the size for fixed.
    pub fixed: Option<usize>,
    /// `None` when the schema has no (or a zero) precision: fastavro accepts such a schema and
    /// fails on the first value, so do we.
    pub precision: Option<i64>,
    pub scale: i64,
}

/// The primitives a [`Node::Opt`] can hold.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Prim {
    Boolean,
    Long,
    Float,
    Double,
    Bytes,
    String,
}

pub enum Node {
    /// A union of `null` and one primitive (`["null", "double"]`, most fields of an alert),
    /// decoded without dispatching twice; `null` is the index of the null branch.
    Opt {
        null: u8,
        prim: Prim,
    },
    Null,
    Boolean,
    /// `int` and `long`: the same zig-zag varint (fastavro does not clamp an int to 32 bits).
    Long,
    Float,
    Double,
    Bytes,
    String,
    Fixed(usize),
    Enum(Box<[Py<PyString>]>),
    Array(Id),
    Map(Id),
    Union(Box<[Id]>),
    Record(Box<Record>),
    /// A logical type over `long`, `int` or `string` (the base is implied by the kind).
    Logical(Logical),
    Decimal(Box<Decimal>),
    /// Only while compiling: a named type whose definition is being compiled.
    Pending,
}

pub struct Compiled {
    pub nodes: Vec<Node>,
    /// The smallest number of bytes a value of each node can take (a lower bound), so that a
    /// count read from the data is checked against the bytes left before anything is allocated.
    pub min_size: Vec<u64>,
    pub root: Id,
    pub has_logical: bool,
}

impl Compiled {
    pub fn root_record(&self) -> Option<&Record> {
        match &self.nodes[self.root as usize] {
            Node::Record(r) => Some(r),
            _ => None,
        }
    }

    pub fn root_name(&self) -> String {
        match &self.nodes[self.root as usize] {
            Node::Record(r) => r.name.clone(),
            Node::Enum(_) => "enum".into(),
            Node::Union(_) => "union".into(),
            Node::Array(_) => "array".into(),
            Node::Map(_) => "map".into(),
            Node::Fixed(_) => "fixed".into(),
            Node::Null => "null".into(),
            Node::Boolean => "boolean".into(),
            Node::Long => "long".into(),
            Node::Float => "float".into(),
            Node::Double => "double".into(),
            Node::Bytes => "bytes".into(),
            Node::String => "string".into(),
            Node::Logical(_) | Node::Decimal(_) => "logical type".into(),
            Node::Opt { .. } => "union".into(),
            Node::Pending => "?".into(),
        }
    }
}

const PRIMITIVES: [&str; 8] = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"];

struct Compiler<'py> {
    py: Python<'py>,
    nodes: Vec<Node>,
    named: HashMap<String, Id>,
    defined: HashSet<String>,
    has_logical: bool,
    depth: u32,
}

/// JSON nests no deeper than Python's recursion limit lets `json.loads` go; this bound only
/// keeps the compiler's own recursion finite whatever object it is handed.
const MAX_SCHEMA_DEPTH: u32 = 1000;

type CResult<T> = Result<T, String>;

pub fn compile(py: Python<'_>, schema: &Bound<'_, PyAny>) -> CResult<Compiled> {
    let mut c = Compiler {
        py,
        nodes: Vec::new(),
        named: HashMap::new(),
        defined: HashSet::new(),
        has_logical: false,
        depth: 0,
    };
    let root = c.compile(schema, "")?;
    fuse_optionals(&mut c.nodes);
    skip_plans(&mut c.nodes);
    let min_size = min_sizes(&c.nodes);
    Ok(Compiled { nodes: c.nodes, min_size, root, has_logical: c.has_logical })
}

fn describe(obj: &Bound<'_, PyAny>) -> String {
    let text = obj.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into());
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn get<'py>(d: &Bound<'py, PyDict>, key: &str) -> CResult<Option<Bound<'py, PyAny>>> {
    d.get_item(key).map_err(|e| e.to_string())
}

fn as_str(obj: &Bound<'_, PyAny>) -> Option<String> {
    obj.cast::<PyString>().ok().and_then(|s| s.to_str().ok().map(str::to_owned))
}

/// A Python int that is not a bool, as i64.
fn as_int(obj: &Bound<'_, PyAny>) -> Option<i64> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return None;
    }
    obj.extract::<i64>().ok()
}

fn truthy(obj: &Option<Bound<'_, PyAny>>) -> bool {
    obj.as_ref().map(|o| o.is_truthy().unwrap_or(true)).unwrap_or(false)
}

fn is_symbol(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl<'py> Compiler<'py> {
    fn push(&mut self, node: Node) -> Id {
        self.nodes.push(node);
        (self.nodes.len() - 1) as Id
    }

    fn compile(&mut self, schema: &Bound<'py, PyAny>, namespace: &str) -> CResult<Id> {
        self.depth += 1;
        if self.depth > MAX_SCHEMA_DEPTH {
            return Err(format!("the schema nests deeper than {MAX_SCHEMA_DEPTH} levels"));
        }
        let result = self.compile_inner(schema, namespace);
        self.depth -= 1;
        result
    }

    fn compile_inner(&mut self, schema: &Bound<'py, PyAny>, namespace: &str) -> CResult<Id> {
        if let Ok(list) = schema.cast::<PyList>() {
            let mut branches = Vec::with_capacity(list.len());
            for item in list.iter() {
                branches.push(self.compile(&item, namespace)?);
            }
            return Ok(self.push(Node::Union(branches.into_boxed_slice())));
        }
        if let Ok(d) = schema.cast::<PyDict>() {
            return self.compile_dict(d, namespace);
        }
        let Some(name) = as_str(schema) else {
            return Err(format!("not an Avro schema: {}", describe(schema)));
        };
        if let Some(node) = primitive(&name) {
            return Ok(self.push(node));
        }
        let full = if !name.contains('.') && !namespace.is_empty() { format!("{namespace}.{name}") } else { name };
        match self.named.get(&full) {
            Some(&id) => Ok(id),
            None => Err(format!("unknown type {full:?}")),
        }
    }

    /// fastavro's `schema_name`: (namespace for the children, full name).
    fn schema_name(&self, d: &Bound<'py, PyDict>, parent_ns: &str) -> CResult<(String, String)> {
        let Some(name) = get(d, "name")? else {
            return Err(format!("\"name\" is a required field missing from the schema: {}", describe(d.as_any())));
        };
        let Some(name) = as_str(&name) else {
            return Err(format!("the name of a named type must be a string, not {}", describe(&name)));
        };
        let namespace = match get(d, "namespace")? {
            None => parent_ns.to_owned(),
            Some(ns) if ns.is_none() => String::new(),
            Some(ns) => match as_str(&ns) {
                Some(s) => s,
                None => return Err(format!("a namespace must be a string, not {}", describe(&ns))),
            },
        };
        if let Some((ns, _)) = name.rsplit_once('.') {
            Ok((ns.to_owned(), name))
        } else if !namespace.is_empty() {
            Ok((namespace.clone(), format!("{namespace}.{name}")))
        } else {
            Ok((String::new(), name))
        }
    }

    fn define(&mut self, full: &str) -> CResult<Id> {
        if !self.defined.insert(full.to_owned()) {
            return Err(format!("redefined named type: {full}"));
        }
        let id = self.push(Node::Pending);
        self.named.insert(full.to_owned(), id);
        Ok(id)
    }

    fn compile_dict(&mut self, d: &Bound<'py, PyDict>, namespace: &str) -> CResult<Id> {
        let Some(kind) = get(d, "type")? else {
            return Err(format!("a schema object has no \"type\": {}", describe(d.as_any())));
        };
        let Some(kind) = as_str(&kind) else {
            return Err(format!("the \"type\" of a schema object must be a type name, not {}", describe(&kind)));
        };
        let logical = get(d, "logicalType")?;
        let logical_name = logical.as_ref().and_then(as_str);
        if logical_name.as_deref() == Some("decimal") {
            self.check_decimal(d, &kind)?;
        }
        match kind.as_str() {
            "array" => {
                let Some(items) = get(d, "items")? else { return Err("an array schema has no \"items\"".into()) };
                let items = self.compile(&items, namespace)?;
                Ok(self.push(Node::Array(items)))
            }
            "map" => {
                let Some(values) = get(d, "values")? else { return Err("a map schema has no \"values\"".into()) };
                let values = self.compile(&values, namespace)?;
                Ok(self.push(Node::Map(values)))
            }
            "enum" => {
                let (_, full) = self.schema_name(d, namespace)?;
                let id = self.define(&full)?;
                let Some(symbols) = get(d, "symbols")? else {
                    return Err(format!("the enum {full} has no \"symbols\""));
                };
                let Ok(symbols) = symbols.cast::<PyList>() else {
                    return Err(format!("the symbols of the enum {full} must be a list"));
                };
                let mut seen = HashSet::new();
                let mut out = Vec::with_capacity(symbols.len());
                for s in symbols.iter() {
                    let text = as_str(&s).filter(|t| is_symbol(t));
                    let Some(text) = text else {
                        return Err("Every symbol must match the regular expression [A-Za-z_][A-Za-z0-9_]*".into());
                    };
                    if !seen.insert(text.clone()) {
                        return Err("All symbols in an enum must be unique".into());
                    }
                    out.push(PyString::intern(self.py, &text).unbind());
                }
                if let Some(default) = get(d, "default")? {
                    if !as_str(&default).map(|t| seen.contains(&t)).unwrap_or(false) {
                        return Err("Default value for enum must be in symbols list".into());
                    }
                }
                self.nodes[id as usize] = Node::Enum(out.into_boxed_slice());
                Ok(id)
            }
            "fixed" => {
                let (_, full) = self.schema_name(d, namespace)?;
                let id = self.define(&full)?;
                let size = get(d, "size")?.as_ref().and_then(as_int);
                let Some(size) = size.filter(|s| *s >= 0) else {
                    return Err(format!("the fixed type {full} needs a non-negative integer \"size\""));
                };
                let size = size as usize;
                self.nodes[id as usize] = match logical_name.as_deref() {
                    Some("decimal") => {
                        self.has_logical = true;
                        Node::Decimal(Box::new(self.decimal(d, Some(size))?))
                    }
                    _ => Node::Fixed(size),
                };
                Ok(id)
            }
            "record" | "error" => {
                let (ns, full) = self.schema_name(d, namespace)?;
                let id = self.define(&full)?;
                let mut fields = Vec::new();
                if let Some(list) = get(d, "fields")? {
                    let Ok(list) = list.cast::<PyList>() else {
                        return Err(format!("the fields of the record {full} must be a list"));
                    };
                    for field in list.iter() {
                        let Ok(fd) = field.cast::<PyDict>() else {
                            return Err(format!("Record field must be a dict, not {}", describe(&field)));
                        };
                        let Some(name) = get(fd, "name")? else {
                            return Err(format!("Record field is missing 'name': {}", describe(&field)));
                        };
                        let Some(name) = as_str(&name) else {
                            return Err(format!(
                                "a field name of the record {full} is not a string: {}",
                                describe(&name)
                            ));
                        };
                        let Some(ftype) = get(fd, "type")? else {
                            return Err(format!("Record field '{name}' is missing 'type'"));
                        };
                        if let Some(aliases) = get(fd, "aliases")? {
                            if !aliases.is_instance_of::<PyList>() {
                                return Err(format!("aliases must be a list, not {}", describe(&aliases)));
                            }
                        }
                        let node = self.compile(&ftype, &ns)?;
                        fields.push(Field { name: PyString::intern(self.py, &name).unbind(), node, fast: Fast::Other });
                    }
                }
                let unique_names =
                    fields.iter().map(|f| f.name.bind(self.py).to_string()).collect::<HashSet<_>>().len()
                        == fields.len();
                let template = PyDict::new(self.py);
                for f in &fields {
                    template.set_item(f.name.bind(self.py), self.py.None()).map_err(|e| e.to_string())?;
                }
                self.nodes[id as usize] = Node::Record(Box::new(Record {
                    name: full,
                    fields: fields.into_boxed_slice(),
                    template: template.unbind(),
                    unique_names,
                    skip: Box::new([]),
                }));
                Ok(id)
            }
            other => {
                let Some(base) = primitive(other) else {
                    return Err(format!("unknown type {other:?}"));
                };
                let node = match (other, logical_name.as_deref()) {
                    ("long", Some("timestamp-millis")) => Node::Logical(Logical::TimestampMillis),
                    ("long", Some("timestamp-micros")) => Node::Logical(Logical::TimestampMicros),
                    ("long", Some("local-timestamp-millis")) => Node::Logical(Logical::LocalTimestampMillis),
                    ("long", Some("local-timestamp-micros")) => Node::Logical(Logical::LocalTimestampMicros),
                    ("long", Some("time-micros")) => Node::Logical(Logical::TimeMicros),
                    ("int", Some("date")) => Node::Logical(Logical::Date),
                    ("int", Some("time-millis")) => Node::Logical(Logical::TimeMillis),
                    ("string", Some("uuid")) => Node::Logical(Logical::Uuid),
                    ("bytes", Some("decimal")) => Node::Decimal(Box::new(self.decimal(d, None)?)),
                    _ => base,
                };
                if matches!(node, Node::Logical(_) | Node::Decimal(_)) {
                    self.has_logical = true;
                }
                Ok(self.push(node))
            }
        }
    }

    /// fastavro's checks of a decimal's scale and precision, at parse time.
    fn check_decimal(&self, d: &Bound<'py, PyDict>, kind: &str) -> CResult<()> {
        let scale = get(d, "scale")?;
        if truthy(&scale) {
            let s =
                scale.as_ref().and_then(|s| if s.is_instance_of::<PyInt>() { s.extract::<i64>().ok() } else { None });
            if !matches!(s, Some(v) if v >= 0) {
                return Err(format!(
                    "decimal scale must be a positive integer, not {}",
                    describe(scale.as_ref().unwrap())
                ));
            }
        }
        let precision = get(d, "precision")?;
        if truthy(&precision) {
            let p =
                precision
                    .as_ref()
                    .and_then(|p| if p.is_instance_of::<PyInt>() { p.extract::<i64>().ok() } else { None });
            let Some(p) = p.filter(|v| *v > 0) else {
                return Err(format!(
                    "decimal precision must be a positive integer, not {}",
                    describe(precision.as_ref().unwrap())
                ));
            };
            if kind == "fixed" {
                let size = get(d, "size")?.as_ref().and_then(as_int).unwrap_or(0);
                let max = (std::f64::consts::LOG10_2 * size.saturating_mul(8).saturating_sub(1) as f64).floor();
                if (p as f64) > max {
                    return Err(format!("decimal precision of {p} doesn't fit into array of length {size}"));
                }
            }
            if truthy(&scale) {
                if let Some(s) = scale.as_ref().and_then(|s| s.extract::<i64>().ok()) {
                    if p < s {
                        return Err(format!("decimal scale must be less than or equal to the precision of {p}"));
                    }
                }
            }
        }
        Ok(())
    }

    fn decimal(&self, d: &Bound<'py, PyDict>, fixed: Option<usize>) -> CResult<Decimal> {
        let scale = match get(d, "scale")? {
            None => 0,
            Some(s) if s.is_instance_of::<PyFloat>() && s.extract::<f64>().map(|v| v == 0.0).unwrap_or(false) => 0,
            Some(s) => s
                .extract::<i64>()
                .map_err(|_| format!("decimal scale must be a positive integer, not {}", describe(&s)))?,
        };
        let precision = get(d, "precision")?.and_then(|p| p.extract::<i64>().ok()).filter(|p| *p > 0);
        Ok(Decimal { fixed, precision, scale })
    }
}

fn primitive(name: &str) -> Option<Node> {
    Some(match name {
        "null" => Node::Null,
        "boolean" => Node::Boolean,
        "int" | "long" => Node::Long,
        "float" => Node::Float,
        "double" => Node::Double,
        "bytes" => Node::Bytes,
        "string" => Node::String,
        _ => return None,
    })
}

#[allow(dead_code)]
pub fn is_primitive(name: &str) -> bool {
    PRIMITIVES.contains(&name)
}

/// Replace each union of `null` and one primitive by a [`Node::Opt`].
fn fuse_optionals(nodes: &mut [Node]) {
    for i in 0..nodes.len() {
        let Node::Union(branches) = &nodes[i] else { continue };
        if branches.len() != 2 {
            continue;
        }
        let prim = |id: Id| match nodes[id as usize] {
            Node::Boolean => Some(Prim::Boolean),
            Node::Long => Some(Prim::Long),
            Node::Float => Some(Prim::Float),
            Node::Double => Some(Prim::Double),
            Node::Bytes => Some(Prim::Bytes),
            Node::String => Some(Prim::String),
            _ => None,
        };
        let is_null = |id: Id| matches!(nodes[id as usize], Node::Null);
        let fused = match (is_null(branches[0]), is_null(branches[1])) {
            (true, false) => prim(branches[1]).map(|p| Node::Opt { null: 0, prim: p }),
            (false, true) => prim(branches[0]).map(|p| Node::Opt { null: 1, prim: p }),
            _ => None,
        };
        if let Some(node) = fused {
            nodes[i] = node;
        }
    }
}

fn skip_op(nodes: &[Node], id: Id) -> SkipOp {
    let opt = |prim: &Prim, null: u8| match prim {
        Prim::Boolean => SkipOp::OptBytes { null, size: 1 },
        Prim::Float => SkipOp::OptBytes { null, size: 4 },
        Prim::Double => SkipOp::OptBytes { null, size: 8 },
        Prim::Long => SkipOp::OptVarint { null },
        Prim::Bytes => SkipOp::OptLen { null },
        Prim::String => SkipOp::OptStr { null },
    };
    match &nodes[id as usize] {
        Node::Null => SkipOp::Bytes(0),
        Node::Boolean => SkipOp::Bytes(1),
        Node::Float => SkipOp::Bytes(4),
        Node::Double => SkipOp::Bytes(8),
        Node::Fixed(n) if *n <= u32::MAX as usize => SkipOp::Bytes(*n as u32),
        Node::Long => SkipOp::Varint,
        Node::Logical(Logical::Uuid) => SkipOp::Str,
        Node::Logical(_) => SkipOp::Varint,
        Node::Bytes => SkipOp::Len,
        Node::Decimal(d) if d.fixed.is_none() => SkipOp::Len,
        Node::Decimal(d) if d.fixed.unwrap_or(0) <= u32::MAX as usize => SkipOp::Bytes(d.fixed.unwrap_or(0) as u32),
        Node::String => SkipOp::Str,
        Node::Opt { null, prim } => opt(prim, *null),
        _ => SkipOp::Node(id),
    }
}

/// Each record's fields as a flat list of skipping steps.
fn skip_plans(nodes: &mut [Node]) {
    for i in 0..nodes.len() {
        let Node::Record(r) = &nodes[i] else { continue };
        let mut plan: Vec<SkipOp> = Vec::with_capacity(r.fields.len());
        for f in r.fields.iter() {
            let op = skip_op(nodes, f.node);
            match (plan.last_mut(), op) {
                (_, SkipOp::Bytes(0)) => {}
                (Some(SkipOp::Bytes(a)), SkipOp::Bytes(b)) if a.checked_add(b).is_some() => *a += b,
                _ => plan.push(op),
            }
        }
        let fast: Vec<Fast> = r
            .fields
            .iter()
            .map(|f| match &nodes[f.node as usize] {
                Node::Opt { null, prim } => Fast::Opt { null: *null, prim: *prim },
                Node::Boolean => Fast::Prim(Prim::Boolean),
                Node::Long => Fast::Prim(Prim::Long),
                Node::Float => Fast::Prim(Prim::Float),
                Node::Double => Fast::Prim(Prim::Double),
                Node::Bytes => Fast::Prim(Prim::Bytes),
                Node::String => Fast::Prim(Prim::String),
                _ => Fast::Other,
            })
            .collect();
        if let Node::Record(r) = &mut nodes[i] {
            r.skip = plan.into_boxed_slice();
            for (f, fast) in r.fields.iter_mut().zip(fast) {
                f.fast = fast;
            }
        }
    }
}

/// Lower bounds of the encoded size of each node, by iterating from 0 towards the fixpoint
/// (a recursive type's size is only ever under-estimated, which keeps the checks safe).
fn min_sizes(nodes: &[Node]) -> Vec<u64> {
    const CAP: u64 = 1 << 40;
    let mut size = vec![0u64; nodes.len()];
    for _ in 0..64 {
        let mut changed = false;
        for (i, node) in nodes.iter().enumerate() {
            let s = match node {
                Node::Null | Node::Pending => 0,
                Node::Opt { .. } => 1,
                Node::Boolean | Node::Long | Node::Bytes | Node::String | Node::Enum(_) | Node::Union(_) => 1,
                Node::Logical(_) => 1,
                Node::Decimal(dec) => dec.fixed.map(|f| f as u64).unwrap_or(1),
                Node::Float => 4,
                Node::Double => 8,
                Node::Fixed(n) => *n as u64,
                Node::Array(_) | Node::Map(_) => 1,
                Node::Record(r) => {
                    r.fields.iter().fold(0u64, |acc, f| acc.saturating_add(size[f.node as usize])).min(CAP)
                }
            };
            // A union takes its index byte plus its smallest branch.
            let s = if let Node::Union(b) = node {
                1 + b.iter().map(|&x| size[x as usize]).min().unwrap_or(0).min(CAP)
            } else {
                s
            };
            if s != size[i] {
                size[i] = s;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    size
}
