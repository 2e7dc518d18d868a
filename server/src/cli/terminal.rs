//! `loupe ssh CONNECTION`: an interactive terminal through Loupe, in the user's own terminal.
//! The terminal is put in raw mode (every key goes to the remote side, Ctrl-C included), its
//! size is sent at connect and on every change (SIGWINCH), and the command exits with the
//! remote program's exit status. With standard input not a terminal, what it reads is typed.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use loupe_protocol::{ErrorBody, SessionStatus, TerminalNotice, TerminalRequest};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

use super::remote::{Client, ServerArgs};

/// Puts the terminal in raw mode until dropped.
struct RawMode;

impl RawMode {
    fn enable() -> Result<RawMode> {
        crossterm::terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// The local terminal's size, 80×24 when there is none.
fn local_size() -> (u16, u16) {
    crossterm::terminal::size().unwrap_or((80, 24))
}

/// Runs the terminal; answers the exit status to leave with.
pub async fn run_ssh(args: &ServerArgs, connection: &str) -> Result<i32> {
    let client = Client::new(args)?;
    let interactive = std::io::stdin().is_terminal();
    let (cols, rows) = local_size();
    let name =
        percent_encoding::utf8_percent_encode(connection, percent_encoding::NON_ALPHANUMERIC);
    let url = client.websocket_url(&format!(
        "/api/connections/{name}/terminal?cols={cols}&rows={rows}"
    ));
    let mut request = url.as_str().into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {}", client.token).parse()?);
    let mut socket = match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => socket,
        Err(tungstenite::Error::Http(response)) => {
            let message = response
                .body()
                .as_deref()
                .and_then(|body| serde_json::from_slice::<ErrorBody>(body).ok())
                .map_or_else(|| response.status().to_string(), |body| body.message);
            bail!("{message}");
        }
        Err(error) => {
            return Err(error).with_context(|| format!("cannot reach Loupe at {}", client.base));
        }
    };
    let raw = if interactive {
        Some(RawMode::enable()?)
    } else {
        None
    };
    let mut resized =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    let mut stdin = tokio::io::stdin();
    let mut typed = vec![0u8; 16 * 1024];
    let mut stdin_open = true;
    let mut stdout = std::io::stdout();
    let ended = loop {
        tokio::select! {
            read = stdin.read(&mut typed), if stdin_open => match read {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(count) => socket.send(Message::binary(typed[..count].to_vec())).await?,
            },
            _ = resized.recv() => {
                let (cols, rows) = local_size();
                let resize = serde_json::to_string(&TerminalRequest::Resize { cols, rows })?;
                socket.send(Message::text(resize)).await?;
            }
            message = socket.next() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    stdout.write_all(&bytes)?;
                    stdout.flush()?;
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<TerminalNotice>(text.as_str()) {
                    Ok(TerminalNotice::Started { .. }) => {}
                    Ok(TerminalNotice::Message { text }) => eprint!("\r\n{text}\r\n"),
                    Ok(TerminalNotice::Ended { status, exit_code, reason }) => {
                        break Some((status, exit_code, reason));
                    }
                    Err(_) => {}
                },
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break None,
            },
        }
    };
    drop(raw);
    Ok(match ended {
        Some((status, exit_code, reason)) => {
            if let Some(reason) = reason {
                eprintln!("loupe: {reason}");
            }
            exit_code.unwrap_or(if status == SessionStatus::Done { 0 } else { 1 })
        }
        None => {
            eprintln!("loupe: the connection to Loupe was lost");
            255
        }
    })
}
