//! `forgecast tap TOPIC`: prints the records passing a topic of a running instance, as they pass.

use std::io::Write;

use anyhow::{Context, bail};

use crate::config::TapPlan;
use crate::http::Tapped;

/// Connects to the instance and prints records until the limit, the end of the stream, or Ctrl-C.
pub async fn run(plan: TapPlan) -> anyhow::Result<()> {
    let url = format!("{}/api/tap?topic={}", plan.url, plan.topic);
    let mut request = forgecast_github::http::client().get(&url);
    if let Some(token) = &plan.admin_token {
        request = request.bearer_auth(token);
    }
    let mut response = request
        .send()
        .await
        .with_context(|| format!("cannot reach forgecast at {}", plan.url))?;
    if !response.status().is_success() {
        let status = response.status();
        let reason = response.text().await.unwrap_or_default();
        bail!("{url} answered {status}: {}", reason.trim());
    }
    eprintln!("Tapping {} at {} (Ctrl-C to stop)…", plan.topic, plan.url);
    let mut printed = 0u64;
    let mut pending = String::new();
    let mut stdout = std::io::stdout().lock();
    while let Some(chunk) = response
        .chunk()
        .await
        .context("the stream from forgecast broke")?
    {
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let message: String = pending.drain(..end + 2).collect();
            let (kind, data) = parse_message(&message);
            match kind {
                "record" => {
                    let tapped: Tapped =
                        serde_json::from_str(&data).context("unexpected record from forgecast")?;
                    if plan.raw {
                        writeln!(stdout, "{}", tapped.raw)?;
                    } else {
                        writeln!(stdout, "{}", summary(&tapped))?;
                    }
                    stdout.flush()?;
                    printed += 1;
                    if plan.limit.is_some_and(|limit| printed >= limit) {
                        return Ok(());
                    }
                }
                "skipped" => eprintln!("(skipped {data} records: this tap fell behind)"),
                _ => {}
            }
        }
    }
    Ok(())
}

/// The event name and the data of one server-sent event.
fn parse_message(message: &str) -> (&str, String) {
    let mut kind = "message";
    let mut data = Vec::new();
    for line in message.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            kind = v.trim();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    (kind, data.join("\n"))
}

fn summary(t: &Tapped) -> String {
    match &t.error {
        Some(error) => format!("{}  dead letter  {error}", t.topic),
        None => format!(
            "{}  {}  {}  {}  {}  {}",
            t.topic, t.created_at, t.kind, t.repo, t.actor, t.id
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_server_sent_events() {
        let (kind, data) = parse_message("event: record\ndata: {\"a\":1}\n\n");
        assert_eq!((kind, data.as_str()), ("record", "{\"a\":1}"));
        assert_eq!(parse_message(": keep-alive\n\n").0, "message");
    }
}
