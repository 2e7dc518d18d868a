//! The command phase read for the record
//! (<https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_command_phase.html>):
//! what each client command says ([`Commands`]), and what the target answers ([`Answers`]),
//! decoded with `mysql_common` from copies of the packets the relay forwards.
//!
//! MySQL answers commands in order, so the client's side tells the target's side what kind of
//! answer comes next ([`Expect`]) through a shared queue; prepared statements (their parameter
//! counts, and the parameter types a client bound last) are shared the same way.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use loupe_protocol::{Cell, Column as RecordedColumn};
use mysql_common::{
    constants::{CapabilityFlags, ColumnFlags, ColumnType, StatusFlags},
    io::ParseBuf,
    packets::{
        Column, CommonOkPacket, NullBitmap, OkPacketDeserializer, ResultSetTerminator, StmtPacket,
    },
    proto::{Binary, MyDeserialize, Text},
    row::RowDeserializer,
    value::{BinValue, ClientSide, ServerSide, Value, ValueDeserializer},
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::packets::{parse, parse_error};
use crate::{
    gateway::values::{hex, typed_cell},
    sessions::summarize,
    wire::recording::Seen,
};

/// The command bytes (`COM_*`) Loupe reads or refuses.
pub mod command {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const STATISTICS: u8 = 0x09;
    pub const PROCESS_KILL: u8 = 0x0c;
    pub const PING: u8 = 0x0e;
    pub const CHANGE_USER: u8 = 0x11;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1a;
    pub const SET_OPTION: u8 = 0x1b;
    pub const STMT_FETCH: u8 = 0x1c;
    pub const RESET_CONNECTION: u8 = 0x1f;
}

/// The kind of answer a command gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// OK, ERR, or result sets (text rows, or binary rows for `COM_STMT_EXECUTE`).
    Results { binary: bool },
    /// `COM_STMT_PREPARE`'s: the statement, its parameters' and columns' definitions; the
    /// statement's text.
    Prepared(String),
    /// One packet: OK, ERR or EOF (ping, reset, `COM_INIT_DB`, …), or `COM_STATISTICS`' text.
    Single,
    /// `COM_FIELD_LIST`'s: column definitions up to an EOF.
    FieldList,
}

/// What both directions share about the connection.
#[derive(Default)]
pub struct Shared {
    expected: VecDeque<Expect>,
    /// Something was relayed that could not be decoded: answers are no longer read.
    lost: bool,
    statements: HashMap<u32, Statement>,
    /// The id of the statement prepared last (what MariaDB's execute-direct names).
    last_prepared: Option<u32>,
}

/// A prepared statement: how many parameters it takes, and their types as last bound (a client
/// sends them only when they change).
#[derive(Default)]
struct Statement {
    text: String,
    parameters: usize,
    types: Vec<(ColumnType, ColumnFlags)>,
    /// Bytes sent for a parameter by `COM_STMT_SEND_LONG_DATA` since the last execution: such
    /// a parameter's value is not in the `COM_STMT_EXECUTE` packet.
    long_data: HashMap<usize, usize>,
}

/// The client's side: what each command says, and what answer it expects.
pub struct Commands {
    shared: Arc<Mutex<Shared>>,
    settled: Arc<Notify>,
}

/// What the record keeps of a command, if anything, and whether to refuse it.
pub enum Command {
    /// To be forwarded; noted as `seen` (perhaps nothing). `statement` is what it runs, for a
    /// review: a query's text, or a prepared statement's with its parameters.
    Forward {
        seen: Vec<Seen>,
        statement: Option<String>,
    },
    /// Not forwarded: answered with this error instead.
    Refuse(String),
}

/// The statement id MariaDB's clients execute to mean "the one just prepared".
const LAST_PREPARED: u32 = u32::MAX;

impl Commands {
    pub fn new(shared: Arc<Mutex<Shared>>, settled: Arc<Notify>) -> Commands {
        Commands { shared, settled }
    }

    /// Waits until the target has answered every command forwarded (so an answer of Loupe's
    /// own comes after them, where the client expects it, and a statement prepared just
    /// before is known), or `stop` fires.
    pub async fn settle(&self, stop: &CancellationToken) {
        let wait = async {
            loop {
                let notified = self.settled.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let answered = {
                    let shared = self.shared.lock().expect("never poisoned");
                    shared.lost || shared.expected.is_empty()
                };
                if answered {
                    return;
                }
                notified.await;
            }
        };
        tokio::select! {
            () = wait => {}
            () = stop.cancelled() => {}
        }
    }

    /// Reads a command's payload (whole), changing nothing: [`Commands::forwarded`] does once
    /// it is forwarded. On a `reviewed` connection, what cannot be shown to a reviewer as what
    /// it runs is refused.
    pub fn take(&self, payload: &[u8], reviewed: bool) -> Command {
        let Some((&code, rest)) = payload.split_first() else {
            // The target answers an empty command with an error Loupe would have to guess.
            return Command::Refuse("an empty command packet".into());
        };
        let shared = self.shared.lock().expect("never poisoned");
        if reviewed && shared.lost && matches!(code, command::QUERY | command::STMT_EXECUTE) {
            return Command::Refuse(
                "Loupe lost track of this connection's answers, so it cannot show statements to a reviewer: connect again".into(),
            );
        }
        let forward =
            |seen: Vec<Seen>, statement: Option<String>| Command::Forward { seen, statement };
        match code {
            command::QUERY => {
                let text = String::from_utf8_lossy(rest).into_owned();
                forward(vec![Seen::Query(text.clone())], Some(text))
            }
            command::STMT_PREPARE => {
                let text = String::from_utf8_lossy(rest).into_owned();
                forward(vec![Seen::Note(format!("prepared: {}", summarize(&text)))], None)
            }
            command::STMT_EXECUTE => {
                if rest.get(4).is_some_and(|flags| *flags != 0) {
                    return Command::Refuse(
                        "cursors (COM_STMT_EXECUTE with a cursor) are not relayed by Loupe".into(),
                    );
                }
                let Some(statement) = statement_of(&shared, rest) else {
                    if reviewed {
                        return Command::Refuse(
                            "Loupe cannot show this execution to a reviewer: it did not see its statement prepared".into(),
                        );
                    }
                    return forward(
                        vec![Seen::Query("(a prepared statement Loupe did not see prepared)".into())],
                        None,
                    );
                };
                let parameters = execute_parameters(rest, statement);
                if reviewed && statement.parameters > 0 && parameters.is_none() {
                    return Command::Refuse(
                        "Loupe cannot show this execution's parameters to a reviewer".into(),
                    );
                }
                let text = statement.text.clone();
                let reviewed_text = match &parameters {
                    Some(values) => format!("{text}\n-- parameters: {}", values.join(", ")),
                    None => text.clone(),
                };
                let mut seen = vec![Seen::Query(text)];
                seen.extend(parameters.map(Seen::Parameters));
                forward(seen, Some(reviewed_text))
            }
            command::INIT_DB => forward(
                vec![Seen::Query(format!(
                    "USE `{}`",
                    String::from_utf8_lossy(rest).replace('`', "``")
                ))],
                None,
            ),
            command::QUIT
            | command::STMT_CLOSE
            | command::STMT_SEND_LONG_DATA
            | command::STMT_RESET
            | command::RESET_CONNECTION
            | command::PING
            | command::SET_OPTION
            | command::STATISTICS
            | command::FIELD_LIST => forward(Vec::new(), None),
            command::CHANGE_USER => Command::Refuse(
                "COM_CHANGE_USER is not relayed: connect again through Loupe as the other user".into(),
            ),
            command::PROCESS_KILL => Command::Refuse(
                "COM_PROCESS_KILL is not relayed: KILL QUERY <id> with the id Loupe gave the connection".into(),
            ),
            command::STMT_FETCH => {
                Command::Refuse("cursors (COM_STMT_FETCH) are not relayed by Loupe".into())
            }
            _ => Command::Refuse(
                "this command (replication, binlog, shutdown or debug) is not relayed by Loupe".into(),
            ),
        }
    }

    /// Takes effect of a command that is forwarded: the answer it expects is queued, and what
    /// it changes about prepared statements is followed.
    pub fn forwarded(&self, payload: &[u8]) {
        let Some((&code, rest)) = payload.split_first() else {
            return;
        };
        let mut shared = self.shared.lock().expect("never poisoned");
        let id = rest
            .get(..4)
            .map(|id| u32::from_le_bytes(id.try_into().expect("four bytes")));
        let expect = match code {
            command::QUERY => Some(Expect::Results { binary: false }),
            command::STMT_PREPARE => {
                Some(Expect::Prepared(String::from_utf8_lossy(rest).into_owned()))
            }
            command::STMT_EXECUTE => {
                let resolved = id.map(|id| {
                    if id == LAST_PREPARED {
                        shared.last_prepared.unwrap_or(id)
                    } else {
                        id
                    }
                });
                if let Some(statement) = resolved.and_then(|id| shared.statements.get_mut(&id)) {
                    if let Some(types) = bound_types(rest, statement.parameters) {
                        statement.types = types;
                    }
                    // Long data goes with one execution.
                    statement.long_data.clear();
                }
                Some(Expect::Results { binary: true })
            }
            command::STMT_CLOSE => {
                if let Some(id) = id {
                    shared.statements.remove(&id);
                }
                None
            }
            command::STMT_SEND_LONG_DATA => {
                if let (Some(id), Some(parameter)) = (id, rest.get(4..6))
                    && let Some(statement) = shared.statements.get_mut(&id)
                {
                    let parameter = usize::from(u16::from_le_bytes([parameter[0], parameter[1]]));
                    *statement.long_data.entry(parameter).or_default() += rest.len() - 6;
                }
                None
            }
            command::STMT_RESET => {
                if let Some(statement) = id.and_then(|id| shared.statements.get_mut(&id)) {
                    statement.long_data.clear();
                }
                Some(Expect::Single)
            }
            command::RESET_CONNECTION => {
                shared.statements.clear();
                Some(Expect::Single)
            }
            command::INIT_DB | command::PING | command::SET_OPTION | command::STATISTICS => {
                Some(Expect::Single)
            }
            command::FIELD_LIST => Some(Expect::FieldList),
            _ => None,
        };
        // Once lost, nothing reads the answers: nothing is queued for them either.
        if let Some(expect) = expect.filter(|_| !shared.lost) {
            shared.expected.push_back(expect);
        }
    }

    /// A command too long to decode was relayed: what answers it cannot be known.
    pub fn lost(&self) {
        self.shared.lock().expect("never poisoned").lost = true;
    }
}

/// The prepared statement a `COM_STMT_EXECUTE` (its body) runs, if Loupe saw it prepared.
fn statement_of<'a>(shared: &'a Shared, body: &[u8]) -> Option<&'a Statement> {
    let id = u32::from_le_bytes(body.get(..4)?.try_into().ok()?);
    let id = if id == LAST_PREPARED {
        shared.last_prepared?
    } else {
        id
    };
    shared.statements.get(&id)
}

/// The parameter types a `COM_STMT_EXECUTE` (its body) binds anew, if it does.
fn bound_types(body: &[u8], count: usize) -> Option<Vec<(ColumnType, ColumnFlags)>> {
    if count == 0 {
        return None;
    }
    // Statement id, cursor flags, iteration count, the NULL bitmap.
    let mut buffer = ParseBuf(body.get(9 + count.div_ceil(8)..)?);
    if buffer.checked_eat_u8()? != 1 {
        return None;
    }
    let mut types = Vec::with_capacity(count);
    for _ in 0..count {
        let kind = ColumnType::try_from(buffer.checked_eat_u8()?).ok()?;
        let flags = if buffer.checked_eat_u8()? & 0x80 != 0 {
            ColumnFlags::UNSIGNED_FLAG
        } else {
            ColumnFlags::empty()
        };
        types.push((kind, flags));
    }
    Some(types)
}

/// The parameters of a `COM_STMT_EXECUTE` (its body) of `statement`, as SQL literals
/// (`?1 = 41, ?2 = 'loupe'`): none when it takes none or the packet cannot be read.
fn execute_parameters(body: &[u8], statement: &Statement) -> Option<Vec<String>> {
    let count = statement.parameters;
    if count == 0 {
        return None;
    }
    let bound = bound_types(body, count);
    let types = bound.as_ref().unwrap_or(&statement.types);
    // Statement id, cursor flags, iteration count.
    let mut buffer = ParseBuf(body.get(9..)?);
    let nulls =
        NullBitmap::<ClientSide, std::borrow::Cow<'_, [u8]>>::deserialize(count, &mut buffer)
            .ok()?;
    if buffer.checked_eat_u8()? == 1 {
        buffer.checked_skip(count * 2).then_some(())?;
    }
    let mut values = Vec::with_capacity(count);
    for index in 0..count {
        if let Some(bytes) = statement.long_data.get(&index) {
            values.push(format!(
                "?{} = ({bytes} bytes sent as long data)",
                index + 1
            ));
            continue;
        }
        let value = if nulls.is_null(index) {
            Value::NULL
        } else {
            let kind = *types.get(index)?;
            ValueDeserializer::<BinValue>::deserialize(kind, &mut buffer)
                .ok()?
                .0
        };
        values.push(format!("?{} = {}", index + 1, value.as_sql(false)));
    }
    Some(values)
}

/// Where the target's answer is.
enum State {
    /// Between answers, or between the result sets of one.
    Idle,
    /// Column definitions of a result set, `left` to come.
    Columns {
        left: u64,
        columns: Vec<Column>,
        binary: bool,
    },
    /// The EOF after column definitions (only without `CLIENT_DEPRECATE_EOF`).
    ColumnsEnd {
        columns: Arc<[Column]>,
        binary: bool,
    },
    Rows {
        columns: Arc<[Column]>,
        binary: bool,
        count: u64,
    },
    /// A prepared statement's definitions: `left` packets to skip (definitions and EOFs).
    Definitions {
        left: u64,
    },
    FieldList,
}

/// The target's side: what each answer says for the record.
pub struct Answers {
    shared: Arc<Mutex<Shared>>,
    settled: Arc<Notify>,
    capabilities: CapabilityFlags,
    state: State,
}

impl Answers {
    pub fn new(
        shared: Arc<Mutex<Shared>>,
        settled: Arc<Notify>,
        capabilities: CapabilityFlags,
    ) -> Answers {
        Answers {
            shared,
            settled,
            capabilities,
            state: State::Idle,
        }
    }

    fn deprecate_eof(&self) -> bool {
        self.capabilities
            .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }

    /// Whether `payload` ends a result set's rows (an EOF, or an OK with an EOF's header).
    fn is_terminator(&self, payload: &[u8]) -> bool {
        let limit = if self.deprecate_eof() { 0xff_ffff } else { 9 };
        payload.first() == Some(&0xfe) && payload.len() < limit
    }

    /// An answer too long to decode was relayed: the rest is not read.
    pub fn lost(&self) {
        self.lose();
    }

    /// Something did not read as the answer expected: from here on answers are not read (and
    /// on a reviewed connection statements are refused), rather than read out of step.
    fn lose(&self) -> Option<Seen> {
        self.shared.lock().expect("never poisoned").lost = true;
        self.settled.notify_waiters();
        None
    }

    /// Reads one answer packet's payload (whole).
    pub fn take(&mut self, payload: &[u8]) -> Option<Seen> {
        if self.shared.lock().expect("never poisoned").lost {
            return None;
        }
        if payload.first() == Some(&0xff) && !matches!(self.state, State::Definitions { .. }) {
            self.state = State::Idle;
            self.done();
            let (number, state, message) = parse_error(payload, self.capabilities)?;
            return Some(Seen::Failed {
                code: state.unwrap_or_else(|| number.to_string()),
                message: format!("{message} (MySQL error {number})"),
            });
        }
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => self.first(payload),
            State::Columns {
                left,
                mut columns,
                binary,
            } => {
                let Some(column) = parse::<Column>(payload, ()) else {
                    return self.lose();
                };
                columns.push(column);
                if left > 1 {
                    self.state = State::Columns {
                        left: left - 1,
                        columns,
                        binary,
                    };
                    return None;
                }
                let described = described(&columns);
                let columns: Arc<[Column]> = columns.into();
                self.state = if self.deprecate_eof() {
                    State::Rows {
                        columns,
                        binary,
                        count: 0,
                    }
                } else {
                    State::ColumnsEnd { columns, binary }
                };
                Some(Seen::Columns(described))
            }
            State::ColumnsEnd { columns, binary } => {
                self.state = State::Rows {
                    columns,
                    binary,
                    count: 0,
                };
                None
            }
            State::Rows {
                columns,
                binary,
                count,
            } => {
                if self.is_terminator(payload) {
                    if !self.more_results(payload) {
                        self.done();
                    }
                    return Some(Seen::Complete(format!("{count} rows")));
                }
                let cells = row(payload, &columns, binary);
                self.state = State::Rows {
                    columns,
                    binary,
                    count: count + 1,
                };
                match cells {
                    Some(cells) => Some(Seen::Row(cells)),
                    None => self.lose(),
                }
            }
            State::Definitions { left } => {
                if left > 1 {
                    self.state = State::Definitions { left: left - 1 };
                } else {
                    self.done();
                }
                None
            }
            State::FieldList => {
                if payload.first() == Some(&0xfe) {
                    self.done();
                } else {
                    self.state = State::FieldList;
                }
                None
            }
        }
    }

    /// The first packet of an answer, read by what its command expects.
    fn first(&mut self, payload: &[u8]) -> Option<Seen> {
        let expected = self
            .shared
            .lock()
            .expect("never poisoned")
            .expected
            .front()
            .cloned();
        match expected {
            Some(Expect::Results { binary }) => match payload.first() {
                Some(0x00) => {
                    let Some(ok) = parse::<OkPacketDeserializer<'_, CommonOkPacket>>(
                        payload,
                        self.capabilities,
                    ) else {
                        return self.lose();
                    };
                    let ok = ok.into_inner();
                    if !ok
                        .status_flags()
                        .contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS)
                    {
                        self.done();
                    }
                    Some(Seen::Complete(format!(
                        "{} rows affected",
                        ok.affected_rows()
                    )))
                }
                // LOCAL INFILE is not offered; whatever follows is an OK or ERR.
                Some(0xfb) => None,
                _ => {
                    let Some(count) = ParseBuf(payload)
                        .checked_eat_lenenc_int()
                        .filter(|count| *count > 0)
                    else {
                        return self.lose();
                    };
                    self.state = State::Columns {
                        left: count,
                        columns: Vec::new(),
                        binary,
                    };
                    None
                }
            },
            Some(Expect::Prepared(text)) => {
                let Some(prepared) = parse::<StmtPacket>(payload, ()) else {
                    return self.lose();
                };
                let (parameters, columns) = (
                    u64::from(prepared.num_params()),
                    u64::from(prepared.num_columns()),
                );
                let mut shared = self.shared.lock().expect("never poisoned");
                shared.statements.insert(
                    prepared.statement_id(),
                    Statement {
                        text,
                        parameters: usize::from(prepared.num_params()),
                        types: Vec::new(),
                        long_data: HashMap::new(),
                    },
                );
                shared.last_prepared = Some(prepared.statement_id());
                drop(shared);
                let end = u64::from(!self.deprecate_eof());
                let left = [parameters, columns]
                    .iter()
                    .map(|&count| if count > 0 { count + end } else { 0 })
                    .sum();
                if left > 0 {
                    self.state = State::Definitions { left };
                } else {
                    self.done();
                }
                None
            }
            Some(Expect::FieldList) => {
                if payload.first() == Some(&0xfe) {
                    self.done();
                } else {
                    self.state = State::FieldList;
                }
                None
            }
            Some(Expect::Single) | None => {
                self.done();
                None
            }
        }
    }

    fn more_results(&self, payload: &[u8]) -> bool {
        let status = if self.deprecate_eof() {
            parse::<OkPacketDeserializer<'_, ResultSetTerminator>>(payload, self.capabilities)
                .map(|ok| ok.into_inner().status_flags())
        } else {
            // EOF: header, warnings (2 bytes), status flags (2 bytes).
            payload.get(3..5).map(|bytes| {
                StatusFlags::from_bits_truncate(u16::from_le_bytes([bytes[0], bytes[1]]))
            })
        };
        status.is_some_and(|flags| flags.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS))
    }

    /// The answer to the oldest command is complete.
    fn done(&mut self) {
        let mut shared = self.shared.lock().expect("never poisoned");
        shared.expected.pop_front();
        if shared.expected.is_empty() {
            self.settled.notify_waiters();
        }
    }
}

/// A row's cells, in each database's own text form.
fn row(payload: &[u8], columns: &Arc<[Column]>, binary: bool) -> Option<Vec<Cell>> {
    let values = if binary {
        parse::<RowDeserializer<ServerSide, Binary>>(payload, columns.clone())?
            .into_inner()
            .unwrap()
    } else {
        parse::<RowDeserializer<(), Text>>(payload, columns.clone())?
            .into_inner()
            .unwrap()
    };
    Some(
        values
            .into_iter()
            .zip(columns.iter())
            .map(|(value, column)| cell(value, column))
            .collect(),
    )
}

/// The recorded columns: names as the database returned them, MySQL's type names.
fn described(columns: &[Column]) -> Vec<RecordedColumn> {
    columns
        .iter()
        .map(|column| RecordedColumn {
            name: column.name_str().into_owned(),
            type_name: type_name(column),
        })
        .collect()
}

/// The `binary` character set: a string column holding bytes.
const BINARY_CHARSET: u16 = 63;

/// MySQL's name for a column's type, as `SHOW COLUMNS` and sqlx (Loupe's other path) write it.
fn type_name(column: &Column) -> String {
    use ColumnType::*;
    let bytes = column.character_set() == BINARY_CHARSET;
    let name = match column.column_type() {
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => "DECIMAL",
        MYSQL_TYPE_TINY => "TINYINT",
        MYSQL_TYPE_SHORT => "SMALLINT",
        MYSQL_TYPE_LONG => "INT",
        MYSQL_TYPE_INT24 => "MEDIUMINT",
        MYSQL_TYPE_LONGLONG => "BIGINT",
        MYSQL_TYPE_FLOAT => "FLOAT",
        MYSQL_TYPE_DOUBLE => "DOUBLE",
        MYSQL_TYPE_NULL => "NULL",
        MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => "TIMESTAMP",
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => "DATE",
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => "TIME",
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => "DATETIME",
        MYSQL_TYPE_YEAR => "YEAR",
        MYSQL_TYPE_BIT => "BIT",
        MYSQL_TYPE_JSON => "JSON",
        MYSQL_TYPE_ENUM => "ENUM",
        MYSQL_TYPE_SET => "SET",
        MYSQL_TYPE_GEOMETRY => "GEOMETRY",
        MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING if bytes => "VARBINARY",
        MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING => "VARCHAR",
        MYSQL_TYPE_STRING if bytes => "BINARY",
        MYSQL_TYPE_STRING => "CHAR",
        MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB | MYSQL_TYPE_BLOB
            if bytes =>
        {
            "BLOB"
        }
        MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB | MYSQL_TYPE_BLOB => {
            "TEXT"
        }
        MYSQL_TYPE_VECTOR => "VECTOR",
        MYSQL_TYPE_TYPED_ARRAY | MYSQL_TYPE_UNKNOWN => "UNKNOWN",
    };
    if column.flags().contains(ColumnFlags::UNSIGNED_FLAG) && column.column_type().is_numeric_type()
    {
        format!("{name} UNSIGNED")
    } else {
        name.to_owned()
    }
}

/// Whether a column's values are bytes rather than text: a string type in the binary
/// character set (numbers and dates carry that character set too).
fn holds_bytes(column: &Column) -> bool {
    use ColumnType::*;
    column.character_set() == BINARY_CHARSET
        && matches!(
            column.column_type(),
            MYSQL_TYPE_VARCHAR
                | MYSQL_TYPE_VAR_STRING
                | MYSQL_TYPE_STRING
                | MYSQL_TYPE_TINY_BLOB
                | MYSQL_TYPE_MEDIUM_BLOB
                | MYSQL_TYPE_LONG_BLOB
                | MYSQL_TYPE_BLOB
                | MYSQL_TYPE_BIT
                | MYSQL_TYPE_GEOMETRY
        )
}

/// A value as MySQL prints it: text rows come as text already; binary rows' numbers and
/// dates are printed as the text protocol would have sent them.
fn cell(value: Value, column: &Column) -> Cell {
    let type_name = type_name(column);
    let text = match value {
        Value::NULL => return Cell::Null,
        Value::Bytes(bytes) if holds_bytes(column) => {
            return Cell::Text(format!("0x{}", hex(&bytes)));
        }
        Value::Bytes(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Value::Int(number) => number.to_string(),
        Value::UInt(number) => number.to_string(),
        Value::Float(number) => number.to_string(),
        Value::Double(number) => number.to_string(),
        Value::Date(year, month, day, hour, minute, second, micros) => {
            let date = format!("{year:04}-{month:02}-{day:02}");
            if matches!(
                column.column_type(),
                ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE
            ) {
                date
            } else {
                format!(
                    "{date} {hour:02}:{minute:02}:{second:02}{}",
                    fraction(micros, column.decimals())
                )
            }
        }
        Value::Time(negative, days, hours, minutes, seconds, micros) => format!(
            "{}{:02}:{minutes:02}:{seconds:02}{}",
            if negative { "-" } else { "" },
            u64::from(days) * 24 + u64::from(hours),
            fraction(micros, column.decimals())
        ),
    };
    typed_cell(&type_name, &text)
}

/// Microseconds as the `decimals` digits a column declares (`.5` of `TIME(1)`), or nothing.
fn fraction(micros: u32, decimals: u8) -> String {
    let digits = usize::from(decimals.min(6));
    if digits == 0 {
        return String::new();
    }
    format!(".{micros:06}")[..=digits].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reviewed(command: Command) -> Result<Option<String>, String> {
        match command {
            Command::Forward { statement, .. } => Ok(statement),
            Command::Refuse(why) => Err(why),
        }
    }

    #[test]
    fn every_execution_names_what_it_runs_and_what_cannot_be_shown_is_refused_for_review() {
        let commands = Commands::new(Arc::default(), Arc::default());
        // A statement Loupe never saw prepared: recorded as such, refused where reviewed.
        let mut execute = vec![command::STMT_EXECUTE];
        execute.extend_from_slice(&7u32.to_le_bytes());
        execute.extend_from_slice(&[0, 1, 0, 0, 0]);
        assert_eq!(reviewed(commands.take(&execute, false)), Ok(None));
        assert!(reviewed(commands.take(&execute, true)).is_err());
        // A cursor is refused.
        let mut cursor = execute.clone();
        cursor[5] = 1;
        assert!(reviewed(commands.take(&cursor, false)).is_err());

        // Prepared (its answer read), then long data for the first of two parameters: its
        // value is not in the execution's packet.
        commands.forwarded(&[command::STMT_PREPARE, b'x']);
        let mut answers = Answers::new(
            commands.shared.clone(),
            commands.settled.clone(),
            CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_DEPRECATE_EOF,
        );
        let mut prepared = vec![0x00];
        prepared.extend_from_slice(&7u32.to_le_bytes());
        prepared.extend_from_slice(&0u16.to_le_bytes());
        prepared.extend_from_slice(&2u16.to_le_bytes());
        prepared.extend_from_slice(&[0, 0, 0]);
        answers.take(&prepared);
        commands
            .shared
            .lock()
            .unwrap()
            .statements
            .get_mut(&7)
            .unwrap()
            .text = "INSERT INTO t VALUES (?, ?)".into();
        let mut long = vec![command::STMT_SEND_LONG_DATA];
        long.extend_from_slice(&7u32.to_le_bytes());
        long.extend_from_slice(&0u16.to_le_bytes());
        long.extend_from_slice(b"hello");
        commands.forwarded(&long);
        // No NULLs, types bound: two LONGLONGs; only the second value follows.
        execute.extend_from_slice(&[0, 1, 8, 0, 8, 0]);
        execute.extend_from_slice(&42i64.to_le_bytes());
        let expected =
            "INSERT INTO t VALUES (?, ?)\n-- parameters: ?1 = (5 bytes sent as long data), ?2 = 42";
        assert_eq!(
            reviewed(commands.take(&execute, true)),
            Ok(Some(expected.into()))
        );
        // Reading it changed nothing: a refused execution leaves the long data in place.
        assert_eq!(
            reviewed(commands.take(&execute, true)),
            Ok(Some(expected.into()))
        );
        // MariaDB's "the statement just prepared".
        let mut direct = execute.clone();
        direct[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            reviewed(commands.take(&direct, true)),
            Ok(Some(expected.into()))
        );
        // Forwarded, the long data goes with it: the same packet now reads as two values, of
        // which only one is there; where statements are reviewed, it is refused.
        commands.forwarded(&execute);
        assert_eq!(
            reviewed(commands.take(&execute, false)),
            Ok(Some("INSERT INTO t VALUES (?, ?)".into()))
        );
        assert!(reviewed(commands.take(&execute, true)).is_err());
        // Refused whatever follows: a change of user, a kill by thread id.
        assert!(reviewed(commands.take(&[command::CHANGE_USER, 1, 2], false)).is_err());
        assert!(reviewed(commands.take(&[command::PROCESS_KILL, 1, 0, 0, 0], false)).is_err());
    }

    #[test]
    fn fractions_follow_the_declared_decimals() {
        assert_eq!(fraction(500_000, 1), ".5");
        assert_eq!(fraction(123_456, 6), ".123456");
        assert_eq!(fraction(123_456, 0), "");
        assert_eq!(fraction(7, 31), ".000007");
    }

    #[test]
    fn binary_values_print_as_the_text_protocol_would() {
        let date = Column::new(ColumnType::MYSQL_TYPE_DATE);
        assert_eq!(
            cell(Value::Date(2026, 12, 1, 0, 0, 0, 0), &date),
            Cell::Text("2026-12-01".into())
        );
        let stamp = Column::new(ColumnType::MYSQL_TYPE_DATETIME).with_decimals(3);
        assert_eq!(
            cell(Value::Date(2026, 12, 1, 7, 3, 55, 120_000), &stamp),
            Cell::Text("2026-12-01 07:03:55.120".into())
        );
        let time = Column::new(ColumnType::MYSQL_TYPE_TIME);
        assert_eq!(
            cell(Value::Time(true, 1, 2, 3, 4, 0), &time),
            Cell::Text("-26:03:04".into())
        );
        let big =
            Column::new(ColumnType::MYSQL_TYPE_LONGLONG).with_flags(ColumnFlags::UNSIGNED_FLAG);
        assert_eq!(type_name(&big), "BIGINT UNSIGNED");
        assert_eq!(cell(Value::UInt(42), &big), Cell::Int(42));
        assert_eq!(
            cell(Value::UInt(u64::MAX), &big),
            Cell::Text(u64::MAX.to_string())
        );
        let blob = Column::new(ColumnType::MYSQL_TYPE_BLOB).with_character_set(63);
        assert_eq!(
            cell(Value::Bytes(vec![0, 0xab]), &blob),
            Cell::Text("0x00ab".into())
        );
        let double = Column::new(ColumnType::MYSQL_TYPE_DOUBLE);
        assert_eq!(cell(Value::Double(1.5), &double), Cell::Float(1.5));
    }
}
