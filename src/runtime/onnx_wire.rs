// SPDX-License-Identifier: MPL-2.0
//! ONNX files at protobuf's wire level, for the rewrites that must keep every field they do not
//! change exactly as it was ([`super::batch_dim`], [`super::coreml_rewrites`]): a model is hundreds
//! of megabytes of fields that this crate's schema subset ([`super::onnx_proto`]) does not declare,
//! and a decode and re-encode through it would drop them.

/// Protobuf's wire types (ONNX uses no groups).
pub(crate) const WIRE_VARINT: u8 = 0;
pub(crate) const WIRE_FIXED64: u8 = 1;
pub(crate) const WIRE_LEN: u8 = 2;
pub(crate) const WIRE_FIXED32: u8 = 5;

/// Field numbers from `onnx.proto`, for the rewrites that walk a model's fields.
pub(crate) mod field {
    pub(crate) const MODEL_GRAPH: u32 = 7;
    pub(crate) const MODEL_OPSET_IMPORT: u32 = 8;
    pub(crate) const GRAPH_NODE: u32 = 1;
    pub(crate) const GRAPH_INITIALIZER: u32 = 5;
    pub(crate) const GRAPH_INPUT: u32 = 11;
    pub(crate) const GRAPH_OUTPUT: u32 = 12;
    pub(crate) const GRAPH_VALUE_INFO: u32 = 13;
    pub(crate) const NODE_OUTPUT: u32 = 2;
    pub(crate) const NODE_ATTRIBUTE: u32 = 5;
    pub(crate) const ATTRIBUTE_NAME: u32 = 1;
    pub(crate) const ATTRIBUTE_TENSOR: u32 = 5;
    pub(crate) const VALUE_INFO_NAME: u32 = 1;
    pub(crate) const VALUE_INFO_TYPE: u32 = 2;
    pub(crate) const TYPE_TENSOR: u32 = 1;
    pub(crate) const TENSOR_TYPE_SHAPE: u32 = 2;
    pub(crate) const SHAPE_DIM: u32 = 1;
    pub(crate) const DIM_VALUE: u32 = 1;
    pub(crate) const DIM_PARAM: u32 = 2;
    pub(crate) const TENSOR_DIMS: u32 = 1;
    pub(crate) const TENSOR_DATA_TYPE: u32 = 2;
    pub(crate) const TENSOR_INT64_DATA: u32 = 7;
    pub(crate) const TENSOR_NAME: u32 = 8;
    pub(crate) const TENSOR_RAW_DATA: u32 = 9;
}

/// `TensorProto.DataType.INT64`.
pub(crate) const DATA_TYPE_INT64: i32 = 7;

/// One field of a message as it is on the wire: `whole` is its tag and value; `payload` the
/// contents of a length-delimited value, the bytes of a varint or of a fixed-size value.
pub(crate) struct Field<'a> {
    pub(crate) number: u32,
    pub(crate) wire: u8,
    pub(crate) whole: &'a [u8],
    pub(crate) payload: &'a [u8],
}

pub(crate) fn read_varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or("a number runs past the end")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a number is longer than 10 bytes".to_string())
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a length-delimited field.
pub(crate) fn put_len_field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | u64::from(WIRE_LEN));
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// The fields of a message, in file order.
pub(crate) fn fields(message: &[u8]) -> Result<Vec<Field<'_>>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < message.len() {
        let start = at;
        let key = read_varint(message, &mut at)?;
        let (number, wire) = ((key >> 3) as u32, (key & 7) as u8);
        let value = at;
        let payload = match wire {
            WIRE_VARINT => {
                read_varint(message, &mut at)?;
                &message[value..at]
            }
            WIRE_FIXED64 | WIRE_FIXED32 => {
                at += if wire == WIRE_FIXED64 { 8 } else { 4 };
                message.get(value..at).ok_or("a field runs past the end")?
            }
            WIRE_LEN => {
                let len = usize::try_from(read_varint(message, &mut at)?).map_err(|_| "a length too large")?;
                let begin = at;
                at = begin.checked_add(len).filter(|&end| end <= message.len()).ok_or("a field runs past the end")?;
                &message[begin..at]
            }
            other => return Err(format!("field {number} has wire type {other}, which ONNX files do not use")),
        };
        out.push(Field { number, wire, whole: &message[start..at], payload });
    }
    Ok(out)
}

/// What a [`rewrite`] does with one field.
pub(crate) enum Edit {
    Keep,
    Drop,
    /// A new payload for a length-delimited field.
    Replace(Vec<u8>),
    /// A new value for a varint field.
    ReplaceVarint(u64),
}

/// Decides what happens to one field, from its number, wire type and payload.
pub(crate) type FieldEdit<'e> = dyn FnMut(u32, u8, &[u8]) -> Result<Edit, String> + 'e;

/// `message` with `edit` applied to each of its fields, the fields it keeps copied as they were.
pub(crate) fn rewrite(message: &[u8], edit: &mut FieldEdit<'_>) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(message.len());
    for f in fields(message)? {
        match edit(f.number, f.wire, f.payload)? {
            Edit::Keep => out.extend_from_slice(f.whole),
            Edit::Drop => {}
            Edit::Replace(payload) => put_len_field(&mut out, f.number, &payload),
            Edit::ReplaceVarint(value) => {
                put_varint(&mut out, (u64::from(f.number) << 3) | u64::from(f.wire));
                put_varint(&mut out, value);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_kept_are_copied_byte_for_byte_and_edits_land() {
        let mut message = Vec::new();
        put_varint(&mut message, (1 << 3) | u64::from(WIRE_VARINT));
        put_varint(&mut message, 300);
        put_len_field(&mut message, 2, b"kept");
        put_varint(&mut message, (3 << 3) | u64::from(WIRE_FIXED32));
        message.extend_from_slice(&[1, 2, 3, 4]);
        put_len_field(&mut message, 4, b"replaced");
        let parsed = fields(&message).unwrap();
        assert_eq!(parsed.iter().map(|f| f.number).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(read_varint(parsed[0].payload, &mut 0).unwrap(), 300);
        assert_eq!(parsed[1].payload, b"kept");
        let unchanged = rewrite(&message, &mut |_, _, _| Ok(Edit::Keep)).unwrap();
        assert_eq!(unchanged, message);
        let edited = rewrite(&message, &mut |n, _, _| {
            Ok(match n {
                1 => Edit::ReplaceVarint(7),
                3 => Edit::Drop,
                4 => Edit::Replace(b"new".to_vec()),
                _ => Edit::Keep,
            })
        })
        .unwrap();
        let parsed = fields(&edited).unwrap();
        assert_eq!(parsed.iter().map(|f| f.number).collect::<Vec<_>>(), [1, 2, 4]);
        assert_eq!(read_varint(parsed[0].payload, &mut 0).unwrap(), 7);
        assert_eq!(parsed[2].payload, b"new");
        assert!(fields(&message[..message.len() - 2]).is_err());
    }
}
