//! MySQL packets as they go on the wire: a 3-byte little-endian payload length, a sequence
//! number, the payload (<https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_packets.html>).
//! Packets are read whole with their header, so the relay forwards exactly what it read;
//! payloads are decoded with `mysql_common`.

use mysql_common::{
    constants::CapabilityFlags,
    io::ParseBuf,
    packets::{ErrPacket, ServerError, SqlState},
    proto::{MyDeserialize, MySerialize},
};
use tokio::io::{AsyncRead, AsyncReadExt};

/// A payload of this length continues in the next packet (a logical packet of 16 MiB or more).
pub const CONTINUED: usize = 0xff_ffff;

/// One packet as it goes on the wire (header and payload), of at most `max` payload bytes.
pub async fn read_packet(
    stream: &mut (impl AsyncRead + Unpin),
    max: usize,
) -> std::io::Result<Vec<u8>> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let length =
        usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    if length > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a packet of {length} bytes where at most {max} are expected"),
        ));
    }
    let mut packet = Vec::with_capacity(length + 4);
    packet.extend_from_slice(&header);
    packet.resize(length + 4, 0);
    stream.read_exact(&mut packet[4..]).await?;
    Ok(packet)
}

/// The payload of a packet read by [`read_packet`].
pub fn payload(packet: &[u8]) -> &[u8] {
    &packet[4..]
}

/// The sequence number of a packet read by [`read_packet`].
pub fn sequence(packet: &[u8]) -> u8 {
    packet[3]
}

/// `payload` (under 16 MiB: everything Loupe writes itself) framed with sequence number `seq`.
pub fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let length = payload.len().min(CONTINUED - 1);
    let mut packet = Vec::with_capacity(length + 4);
    packet.extend_from_slice(&(length as u32).to_le_bytes()[..3]);
    packet.push(seq);
    packet.extend_from_slice(&payload[..length]);
    packet
}

/// A serialized `mysql_common` message.
pub fn serialized(message: &impl MySerialize) -> Vec<u8> {
    let mut buffer = Vec::new();
    message.serialize(&mut buffer);
    buffer
}

/// An ERR packet's payload: MySQL's error number, SQLSTATE and message.
pub fn error(code: u16, state: &[u8; 5], message: &str) -> Vec<u8> {
    serialized(&ErrPacket::Error(ServerError::new(
        code,
        Some(SqlState::new(*state)),
        message.as_bytes(),
    )))
}

/// An ERR packet's error number, SQLSTATE and message.
pub fn parse_error(
    payload: &[u8],
    capabilities: CapabilityFlags,
) -> Option<(u16, Option<String>, String)> {
    match ParseBuf(payload)
        .parse::<ErrPacket<'_>>(capabilities)
        .ok()?
    {
        ErrPacket::Error(error) => Some((
            error.error_code(),
            error
                .sql_state_ref()
                .map(|state| state.as_str().into_owned()),
            error.message_str().into_owned(),
        )),
        ErrPacket::Progress(_) => None,
    }
}

/// Parses a whole payload as `T`.
pub fn parse<'de, T: MyDeserialize<'de>>(payload: &'de [u8], context: T::Ctx) -> Option<T> {
    ParseBuf(payload).parse(context).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn packets_are_framed_and_read_back_whole() {
        let framed = packet(3, b"\x03SELECT 1");
        assert_eq!(&framed[..4], &[9, 0, 0, 3]);
        let read = read_packet(&mut &framed[..], 64).await.unwrap();
        assert_eq!(read, framed);
        assert_eq!((sequence(&read), payload(&read)), (3, &b"\x03SELECT 1"[..]));
        // Longer than allowed: refused before anything is allocated for it.
        let error = read_packet(&mut &framed[..], 4).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        // Cut short: an error, not a panic.
        assert!(read_packet(&mut &framed[..6], 64).await.is_err());
    }

    #[test]
    fn errors_carry_their_number_and_sqlstate() {
        let payload = error(1045, b"28000", "Access denied");
        assert_eq!(payload[0], 0xff);
        assert_eq!(
            parse_error(&payload, CapabilityFlags::CLIENT_PROTOCOL_41),
            Some((1045, Some("28000".to_owned()), "Access denied".to_owned()))
        );
    }
}
