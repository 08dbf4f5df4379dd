//! Avro Object Container Files and their block codecs, with the checks and the wording of
//! `genesis._codecs._container` and `_compression`. Every decompressor stops at
//! [`MAX_BLOCK_BYTES`] of output: a bomb fails, it never allocates more.

use std::io::{self, Read, Write};

/// No alert comes near this; a block that inflates beyond it is refused.
pub const MAX_BLOCK_BYTES: usize = 128 * 1024 * 1024;
const SYNC: usize = 16;
pub const MAGIC: &[u8] = b"Obj\x01";

pub struct Block {
    pub count: i64,
    /// `None`: the records are `buf[start..end]` of the container itself (null codec).
    pub data: Option<Vec<u8>>,
    pub start: usize,
    pub end: usize,
}

pub struct Container<'a> {
    pub schema: &'a [u8],
    pub blocks: Vec<Block>,
}

pub enum CErr {
    /// A DecodeError with this text.
    Decode(String),
    /// The codec is unknown: its name (the message needs Python's repr of it).
    UnknownCodec(String),
}

type CR<T> = Result<T, CErr>;

fn err<T>(text: String) -> CR<T> {
    Err(CErr::Decode(text))
}

/// `genesis._codecs._avro.read_long`.
fn read_long(buf: &[u8], pos: &mut usize, what: &str) -> CR<i64> {
    let start = *pos;
    let mut result: u64 = 0;
    let mut shift = 0u32;
    loop {
        let Some(&b) = buf.get(*pos) else {
            return err(format!("truncated Avro data: the {what} at byte {start} is cut off"));
        };
        *pos += 1;
        result |= ((b & 0x7F) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(((result >> 1) as i64) ^ -((result & 1) as i64));
        }
        shift += 7;
        if *pos - start >= 10 {
            return err(format!("corrupt Avro data: the {what} at byte {start} is not a valid varint"));
        }
    }
}

fn read_bytes<'a>(buf: &'a [u8], pos: &mut usize, what: &str) -> CR<&'a [u8]> {
    let size = read_long(buf, pos, &format!("length of the {what}"))?;
    if size < 0 {
        return err(format!("corrupt Avro container: negative length {size} for the {what}"));
    }
    let left = buf.len() - *pos;
    if size as u64 > left as u64 {
        return err(format!("truncated Avro container: the {what} needs {size} bytes, got {left}"));
    }
    let s = &buf[*pos..*pos + size as usize];
    *pos += size as usize;
    Ok(s)
}

/// A container's header: (schema JSON, codec, sync marker, offset of the first block).
type Header<'a> = (&'a [u8], &'a [u8], &'a [u8], usize);

fn read_header(buf: &[u8]) -> CR<Header<'_>> {
    if buf.len() < 4 || &buf[..4] != MAGIC {
        return err("not an Avro container: it does not start with Obj\\x01".into());
    }
    let mut pos = 4;
    let mut schema = None;
    let mut codec: &[u8] = b"null";
    loop {
        let count = read_long(buf, &mut pos, "header metadata count")?;
        if count == 0 {
            break;
        }
        if count < 0 {
            read_long(buf, &mut pos, "header metadata size")?;
        }
        // Each entry takes at least two bytes, so this loop ends with the data.
        for _ in 0..count.unsigned_abs() {
            let key = read_bytes(buf, &mut pos, "header metadata key")?;
            let value = read_bytes(buf, &mut pos, "header metadata value")?;
            if key == b"avro.schema" {
                schema = Some(value);
            } else if key == b"avro.codec" {
                codec = value;
            }
        }
    }
    let sync = &buf[pos.min(buf.len())..(pos + SYNC).min(buf.len())];
    if sync.len() < SYNC {
        return err(format!(
            "truncated Avro container: the header's sync marker needs {SYNC} bytes, got {}",
            sync.len()
        ));
    }
    let Some(schema) = schema else {
        return err("corrupt Avro container: the header has no avro.schema entry".into());
    };
    Ok((schema, codec, sync, pos + SYNC))
}

/// Whether the container's blocks are compressed (its header names a codec other than null);
/// `false` also for a header that does not parse (`read_container` then says why).
pub fn is_compressed(buf: &[u8]) -> bool {
    matches!(read_header(buf), Ok((_, codec, _, _)) if codec != b"null")
}

pub fn read_container(buf: &[u8]) -> CR<Container<'_>> {
    let (schema, codec, sync, mut pos) = read_header(buf)?;
    let size_buf = buf.len();
    let mut blocks = Vec::new();
    let mut block = 0usize;
    while pos < size_buf {
        block += 1;
        let count = read_long(buf, &mut pos, &format!("record count of block {block}"))?;
        let size = read_long(buf, &mut pos, &format!("byte size of block {block}"))?;
        if count < 0 || size < 0 {
            return err(format!("corrupt Avro container: block {block} declares {count} records in {size} bytes"));
        }
        if size as u64 > (size_buf - pos) as u64 {
            return err(format!(
                "truncated Avro container: expected {size} bytes in block {block}, got {}",
                size_buf - pos
            ));
        }
        let end = pos + size as usize;
        if buf.len() < end + SYNC || &buf[end..end + SYNC] != sync {
            if end + SYNC > size_buf {
                return err(format!("truncated Avro container: the sync marker after block {block} is cut off"));
            }
            return err(format!(
                "corrupt Avro container: the sync marker after block {block} differs from the header's"
            ));
        }
        if codec == b"null" {
            blocks.push(Block { count, data: None, start: pos, end });
        } else {
            let data = decompress(codec, &buf[pos..end])?;
            let n = data.len();
            blocks.push(Block { count, data: Some(data), start: 0, end: n });
        }
        pos = end + SYNC;
    }
    if block == 0 {
        return err("truncated Avro container: it has a header but no data block".into());
    }
    Ok(Container { schema, blocks })
}

fn decompress(codec: &[u8], data: &[u8]) -> CR<Vec<u8>> {
    match codec {
        b"deflate" => inflate(data),
        b"snappy" => unsnappy(data),
        b"zstandard" => bounded(zstd_reader(data)?, "zstandard"),
        b"bzip2" => bounded(bzip2::read::BzDecoder::new(data), "bzip2"),
        b"xz" => unxz(data),
        other => Err(CErr::UnknownCodec(String::from_utf8_lossy(other).into_owned())),
    }
}

fn corrupt(codec: &str, detail: impl std::fmt::Display) -> CErr {
    CErr::Decode(format!("corrupt {codec} block in the Avro container: {detail}"))
}

fn bomb(codec: &str) -> CErr {
    CErr::Decode(format!("{codec} block inflates beyond {} MiB: corrupt data", MAX_BLOCK_BYTES >> 20))
}

fn cut_off(codec: &str) -> CErr {
    CErr::Decode(format!("truncated Avro container: the {codec} stream of a block is cut off"))
}

fn inflate(data: &[u8]) -> CR<Vec<u8>> {
    use miniz_oxide::inflate::TINFLStatus;
    match miniz_oxide::inflate::decompress_to_vec_with_limit(data, MAX_BLOCK_BYTES) {
        Ok(out) => Ok(out),
        Err(e) => Err(match e.status {
            TINFLStatus::HasMoreOutput => bomb("deflate"),
            TINFLStatus::FailedCannotMakeProgress | TINFLStatus::NeedsMoreInput => cut_off("deflate"),
            status => corrupt("deflate", format!("invalid deflate data ({status:?})")),
        }),
    }
}

fn unsnappy(data: &[u8]) -> CR<Vec<u8>> {
    if data.len() < 4 {
        return err("truncated Avro container: a snappy block lacks its 4-byte CRC".into());
    }
    let (body, crc) = data.split_at(data.len() - 4);
    // The length that raw snappy starts with, read as genesis' Python path reads it.
    let mut size: u64 = 0;
    for (i, &b) in data.iter().take(5).enumerate() {
        size |= ((b & 0x7F) as u64) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
    }
    if size > MAX_BLOCK_BYTES as u64 {
        return err(format!("snappy block claims {size} bytes, beyond {} MiB: corrupt data", MAX_BLOCK_BYTES >> 20));
    }
    let len = snap::raw::decompress_len(body).map_err(|e| corrupt("snappy", e))?;
    if len > MAX_BLOCK_BYTES {
        return err(format!("snappy block claims {len} bytes, beyond {} MiB: corrupt data", MAX_BLOCK_BYTES >> 20));
    }
    let out = snap::raw::Decoder::new().decompress_vec(body).map_err(|e| corrupt("snappy", e))?;
    if crc32fast::hash(&out).to_be_bytes() != crc {
        return err("corrupt Avro container: CRC of a snappy block does not match".into());
    }
    Ok(out)
}

fn zstd_reader(data: &[u8]) -> CR<impl Read + '_> {
    ruzstd::decoding::StreamingDecoder::new(data).map_err(|e| {
        let text = e.to_string();
        if text.to_ascii_lowercase().contains("eof") || text.contains("not enough") {
            cut_off("zstandard")
        } else {
            corrupt("zstandard", text)
        }
    })
}

/// Read a decompressor to its end, refusing more than [`MAX_BLOCK_BYTES`] of output; the
/// buffer never grows beyond that bound (plus one byte to tell a bomb from a full block).
fn bounded<R: Read>(mut reader: R, codec: &str) -> CR<Vec<u8>> {
    let mut out: Vec<u8> = Vec::new();
    let mut len = 0usize;
    loop {
        if len == out.len() {
            if out.len() > MAX_BLOCK_BYTES {
                return Err(bomb(codec));
            }
            let new_len = (out.len() * 2).clamp(64 * 1024, MAX_BLOCK_BYTES + 1);
            out.reserve_exact(new_len - out.len());
            out.resize(new_len, 0);
        }
        match reader.read(&mut out[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len > MAX_BLOCK_BYTES {
                    return Err(bomb(codec));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(cut_off(codec)),
            Err(e) => {
                let text = e.to_string();
                if text.contains("EOF") || text.contains("end of file") || text.contains("unexpected end") {
                    return Err(cut_off(codec));
                }
                return Err(corrupt(codec, text));
            }
        }
    }
    out.truncate(len);
    Ok(out)
}

/// A `Write` that refuses to hold more than [`MAX_BLOCK_BYTES`].
struct Capped {
    out: Vec<u8>,
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.out.len() + data.len() > MAX_BLOCK_BYTES {
            self.over = true;
            return Err(io::Error::other("block too large"));
        }
        self.out.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The size an xz stream inflates to, read from its LZMA2 chunk headers without decompressing.
///
/// lzma-rs accumulates a whole LZMA2 block in memory before writing any of it out, so a bound on
/// its output comes too late; each chunk header states its exact unpacked size (lzma-rs checks
/// it), so adding them up first lets a bomb be refused before anything is allocated.
fn xz_unpacked_size(data: &[u8]) -> CR<usize> {
    let truncated = || cut_off("xz");
    let byte = |at: usize| data.get(at).copied().ok_or_else(truncated);
    if data.len() < 12 || &data[..6] != b"\xfd7zXZ\x00" {
        return Err(corrupt("xz", "no xz stream header"));
    }
    // the check's size by its id (xz spec 2.1.1.2): none, then 4, 8, 16, 32, 64 bytes, three ids each
    let check = match byte(7)? & 0x0F {
        0 => 0,
        n => 4 << ((n - 1) / 3),
    };
    let (mut pos, mut total) = (12usize, 0usize);
    loop {
        let header = byte(pos)?;
        if header == 0 {
            return Ok(total); // the index: every block has been counted
        }
        pos += (header as usize + 1) * 4; // the block header, its filter flags included
        let start = pos;
        loop {
            let control = byte(pos)?;
            let (unpacked, packed, head) = match control {
                0x00 => break,
                0x01 | 0x02 => ((((byte(pos + 1)? as usize) << 8) | byte(pos + 2)? as usize) + 1, 0, 3),
                0x80..=0xFF => (
                    ((((control & 0x1F) as usize) << 16) | ((byte(pos + 1)? as usize) << 8) | byte(pos + 2)? as usize)
                        + 1,
                    (((byte(pos + 3)? as usize) << 8) | byte(pos + 4)? as usize) + 1,
                    if control >= 0xC0 { 6 } else { 5 },
                ),
                _ => return Err(corrupt("xz", format!("invalid LZMA2 chunk control byte 0x{control:02x}"))),
            };
            total += unpacked;
            if total > MAX_BLOCK_BYTES {
                return Err(bomb("xz"));
            }
            pos += head + if control <= 0x02 { unpacked } else { packed };
        }
        pos += 1; // the end-of-LZMA2 byte
        pos += (4 - (pos - start) % 4) % 4 + check; // padding to four bytes, then the check
    }
}

fn unxz(data: &[u8]) -> CR<Vec<u8>> {
    xz_unpacked_size(data)?;
    let mut input = io::BufReader::new(data);
    let mut out = Capped { out: Vec::new(), over: false };
    match lzma_rs::xz_decompress(&mut input, &mut out) {
        Ok(()) => Ok(out.out),
        Err(_) if out.over => Err(bomb("xz")),
        Err(lzma_rs::error::Error::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Err(cut_off("xz")),
        Err(e) => Err(corrupt("xz", e)),
    }
}

/// The schema id of a Confluent wire-format message (magic byte 0, 4-byte big-endian id).
pub fn wire_schema_id(buf: &[u8]) -> Result<u32, String> {
    if buf.len() < 5 {
        return Err(format!("truncated Confluent wire-format message: the header needs 5 bytes, got {}", buf.len()));
    }
    if buf[0] != 0 {
        return Err(format!("not a Confluent wire-format message: its magic byte is 0x{:02x}, not 0x00", buf[0]));
    }
    Ok(u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]))
}
