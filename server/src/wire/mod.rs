//! Database clients' own wire protocols through Loupe: people keep `psql` and their drivers,
//! and every statement is recorded. Today: the PostgreSQL protocol ([`postgres`]), on the
//! address `LOUPE_PG_BIND` names (off when unset). The relay forwards every message unchanged
//! in both directions and decodes copies of them to record, so what the client and the target
//! say to each other is exactly what they would say without Loupe.

pub mod postgres;
