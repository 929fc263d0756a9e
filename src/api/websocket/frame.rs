//! WebSocket frames (RFC 6455 §5) as the server reads and writes them: client frames are
//! masked and checked here, server frames are unmasked and only need a header.

/// Close codes the server sends when a client breaks the protocol (RFC 6455 §7.4.1).
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub const CLOSE_INVALID_DATA: u16 = 1007;
pub const CLOSE_TOO_BIG: u16 = 1009;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Longest server frame header: two bytes and a 64-bit length.
pub const MAX_HEADER: usize = 10;
/// Longest payload of a control frame (ping, pong, close).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Why a client frame is refused: the close code to send and a reason for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub code: u16,
    pub reason: &'static str,
}

const fn violation(code: u16, reason: &'static str) -> Violation {
    Violation { code, reason }
}

/// The header of one client frame, read whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    pub opcode: u8,
    pub mask: [u8; 4],
    /// Bytes the header took.
    pub len: usize,
    pub payload_len: usize,
}

impl Header {
    /// Reads a client frame's header from the start of `input`: `Ok(None)` until it is all
    /// there. Refuses what RFC 6455 forbids a client (an unmasked frame, reserved bits or
    /// opcodes, a fragmented or oversized control frame) and any payload above `max_payload`,
    /// before a byte of it is buffered.
    pub fn parse(input: &[u8], max_payload: usize) -> Result<Option<Header>, Violation> {
        let [first, second, rest @ ..] = input else {
            return Ok(None);
        };
        if first & 0x70 != 0 {
            return Err(violation(CLOSE_PROTOCOL_ERROR, "reserved bits set"));
        }
        let fin = first & 0x80 != 0;
        let opcode = first & 0x0F;
        match opcode {
            OP_CONTINUATION | OP_TEXT | OP_BINARY => {}
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin {
                    return Err(violation(CLOSE_PROTOCOL_ERROR, "fragmented control frame"));
                }
                if usize::from(second & 0x7F) > MAX_CONTROL_PAYLOAD {
                    return Err(violation(CLOSE_PROTOCOL_ERROR, "control frame too long"));
                }
            }
            _ => return Err(violation(CLOSE_PROTOCOL_ERROR, "reserved opcode")),
        }
        if second & 0x80 == 0 {
            return Err(violation(CLOSE_PROTOCOL_ERROR, "unmasked client frame"));
        }
        let (payload_len, length_bytes) = match second & 0x7F {
            126 => match rest {
                [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 2),
                _ => return Ok(None),
            },
            127 => match rest.first_chunk::<8>() {
                Some(bytes) => (u64::from_be_bytes(*bytes), 8),
                None => return Ok(None),
            },
            short => (u64::from(short), 0),
        };
        let payload_len = match usize::try_from(payload_len) {
            Ok(len) if len <= max_payload => len,
            _ => return Err(violation(CLOSE_TOO_BIG, "message too big")),
        };
        let Some(mask) = rest[length_bytes..].first_chunk::<4>() else {
            return Ok(None);
        };
        Ok(Some(Header {
            fin,
            opcode,
            mask: *mask,
            len: 2 + length_bytes + 4,
            payload_len,
        }))
    }
}

/// Removes a client's mask from its payload, in place.
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

/// The header of a server frame (final, unmasked) carrying `payload_len` bytes: the bytes and
/// how many of them are used.
pub fn server_header(opcode: u8, payload_len: usize) -> ([u8; MAX_HEADER], u8) {
    let mut header = [0u8; MAX_HEADER];
    header[0] = 0x80 | opcode;
    let used = if payload_len < 126 {
        header[1] = payload_len as u8;
        2
    } else if let Ok(short) = u16::try_from(payload_len) {
        header[1] = 126;
        header[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
        10
    };
    (header, used)
}

/// Checks a close frame's payload (RFC 6455 §5.5.1, §7.4): empty, or a code a peer may send
/// and a UTF-8 reason. Returns the code and reason.
pub fn parse_close(payload: &[u8]) -> Result<Option<(u16, &str)>, Violation> {
    let Some((code, reason)) = payload.split_first_chunk::<2>() else {
        return match payload.len() {
            0 => Ok(None),
            _ => Err(violation(CLOSE_PROTOCOL_ERROR, "close frame of one byte")),
        };
    };
    let code = u16::from_be_bytes(*code);
    let allowed = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    if !allowed {
        return Err(violation(CLOSE_PROTOCOL_ERROR, "close code not allowed"));
    }
    let reason = std::str::from_utf8(reason)
        .map_err(|_| violation(CLOSE_INVALID_DATA, "close reason not UTF-8"))?;
    Ok(Some((code, reason)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame as a browser sends it: masked with `mask`.
    fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let (header, used) = server_header(first & 0x0F, payload.len());
        let mut frame = header[..usize::from(used)].to_vec();
        frame[0] = first;
        frame[1] |= 0x80;
        frame.extend_from_slice(&mask);
        let mut body = payload.to_vec();
        unmask(&mut body, mask);
        frame.extend_from_slice(&body);
        frame
    }

    #[test]
    fn reads_each_length_form_and_waits_for_a_whole_header() {
        let mask = [1, 2, 3, 4];
        for len in [0, 125, 126, 65_535, 65_536, 200_000] {
            let frame = client_frame(0x81, &vec![b'a'; len], mask);
            let header = Header::parse(&frame, 1 << 20).unwrap().unwrap();
            assert_eq!(header.payload_len, len);
            assert_eq!(header.len + len, frame.len());
            assert_eq!(
                (header.fin, header.opcode, header.mask),
                (true, OP_TEXT, mask)
            );
            for cut in 0..header.len {
                assert_eq!(
                    Header::parse(&frame[..cut], 1 << 20),
                    Ok(None),
                    "cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn unmasking_restores_the_payload() {
        let frame = client_frame(0x81, b"hello, switchyard", [9, 8, 7, 6]);
        let header = Header::parse(&frame, 100).unwrap().unwrap();
        let mut payload = frame[header.len..].to_vec();
        unmask(&mut payload, header.mask);
        assert_eq!(payload, b"hello, switchyard");
    }

    #[test]
    fn refuses_what_a_client_may_not_send() {
        let mask = [1, 2, 3, 4];
        let refused = |frame: &[u8], max: usize| Header::parse(frame, max).unwrap_err().code;
        assert_eq!(
            refused(&[0x81, 0x05, b'h', b'e'], 100),
            CLOSE_PROTOCOL_ERROR,
            "unmasked"
        );
        assert_eq!(
            refused(&client_frame(0xC1, b"x", mask), 100),
            CLOSE_PROTOCOL_ERROR
        );
        assert_eq!(
            refused(&client_frame(0x83, b"x", mask), 100),
            CLOSE_PROTOCOL_ERROR
        );
        assert_eq!(
            refused(&client_frame(0x09, b"", mask), 100),
            CLOSE_PROTOCOL_ERROR
        );
        assert_eq!(
            refused(&client_frame(0x89, &[0; 126], mask), 1000),
            CLOSE_PROTOCOL_ERROR
        );
        assert_eq!(
            refused(&client_frame(0x82, &[0; 101], mask), 100),
            CLOSE_TOO_BIG
        );
        // A 64-bit length past any buffer is refused from its header alone.
        let huge = [0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(refused(&huge, 1 << 20), CLOSE_TOO_BIG);
    }

    #[test]
    fn server_headers_use_the_shortest_length_form() {
        assert_eq!(
            server_header(OP_TEXT, 5),
            ([0x81, 5, 0, 0, 0, 0, 0, 0, 0, 0], 2)
        );
        assert_eq!(server_header(OP_PING, 0).1, 2);
        let (header, used) = server_header(OP_TEXT, 300);
        assert_eq!((&header[..4], used), (&[0x81, 126, 1, 44][..], 4));
        let (header, used) = server_header(OP_BINARY, 70_000);
        assert_eq!(used, 10);
        assert_eq!(
            u64::from_be_bytes(header[2..10].try_into().unwrap()),
            70_000
        );
    }

    #[test]
    fn close_payloads_are_checked() {
        assert_eq!(parse_close(b""), Ok(None));
        let mut normal = 1000u16.to_be_bytes().to_vec();
        normal.extend_from_slice(b"bye");
        assert_eq!(parse_close(&normal), Ok(Some((1000, "bye"))));
        assert_eq!(parse_close(&4001u16.to_be_bytes()), Ok(Some((4001, ""))));
        for code in [999u16, 1004, 1005, 1006, 1015, 2999, 5000] {
            let refused = parse_close(&code.to_be_bytes()).unwrap_err();
            assert_eq!(refused.code, CLOSE_PROTOCOL_ERROR, "code {code}");
        }
        assert_eq!(parse_close(&[3]).unwrap_err().code, CLOSE_PROTOCOL_ERROR);
        let bad_reason = [0x03, 0xE8, 0xFF];
        assert_eq!(
            parse_close(&bad_reason).unwrap_err().code,
            CLOSE_INVALID_DATA
        );
    }
}
