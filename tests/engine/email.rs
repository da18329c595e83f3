//! The email channel against a real SMTP server (aiosmtpd, `tests/peers/smtp_sink.py`): what
//! arrives, as Python's `email` package reads it, and how each refusal is classified. No
//! database is involved, so these run once, not per backend.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use belfry::delivery::email::{EmailChannel, SmtpSettings};
use belfry::delivery::{Channel, Contact, Message, Outcome};
use belfry::domain::{Body, Category, Content, Link, NotificationId, Payload, Priority, Title};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::helpers::user;
use crate::peers;

/// Longest wait for the sink to start or to report a message: generous for a loaded machine,
/// and only reached when something is broken.
const DEADLINE: Duration = Duration::from_secs(30);

/// A running `smtp_sink.py` and the JSON lines it prints.
pub(crate) struct Sink {
    port: u16,
    lines: mpsc::UnboundedReceiver<Value>,
    child: Child,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sink {
    pub(crate) async fn start(args: &[&str]) -> Sink {
        let mut child = Command::new(peers::python())
            .arg(peers::script("smtp_sink.py"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/peers/smtp_sink.py");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::unbounded_channel();
        // A thread, not a task: the pipe is blocking, and a test's runtime may have one thread.
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("the sink printed {line:?}, not JSON: {e}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let mut sink = Sink {
            port: 0,
            lines,
            child,
        };
        let listening = sink.next().await;
        sink.port = listening["listening"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("the sink's first line is not its port: {listening}"));
        sink
    }

    /// The sink's next line, within the deadline.
    pub(crate) async fn next(&mut self) -> Value {
        match tokio::time::timeout(DEADLINE, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("the SMTP sink exited (its stderr is above)"),
            Err(_) => panic!("the SMTP sink said nothing within {DEADLINE:?}"),
        }
    }

    /// The next message the sink accepted; whatever it reports before must be `expected`.
    pub(crate) async fn received(&mut self) -> Received {
        let line = self.next().await;
        match line.get("message") {
            Some(message) => Received(message.clone()),
            None => panic!("expected a received message, the sink said {line}"),
        }
    }

    /// Nothing more has been reported (checked after an outcome, when the sink has already
    /// printed whatever that attempt made it print: it prints before it answers).
    pub(crate) fn assert_quiet(&mut self) {
        if let Ok(line) = self.lines.try_recv() {
            panic!("the sink reported more than expected: {line}");
        }
    }

    pub(crate) fn settings(&self, extra: &str) -> SmtpSettings {
        settings(&format!(
            "host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n{extra}",
            self.port
        ))
    }
}

/// SMTP settings from `toml` (the server's part), sending as the tests' sender.
pub(crate) fn settings(toml: &str) -> SmtpSettings {
    let toml = format!(
        "from = \"Belfry Alerts <noreply@belfry.test>\"\nreply_to = \"Support <help@belfry.test>\"\n\
         app_url = \"https://app.belfry.test\"\n{toml}"
    );
    use figment::providers::{Format, Toml};
    figment::Figment::from(Toml::string(&toml))
        .extract()
        .unwrap_or_else(|e| panic!("settings {toml:?}: {e}"))
}

/// A message as the sink parsed it.
pub(crate) struct Received(Value);

impl Received {
    /// Every value of header `name` (decoded, as a mail reader shows it).
    fn headers(&self, name: &str) -> Vec<String> {
        self.0["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
            .map(|h| h[1].as_str().unwrap().to_owned())
            .collect()
    }

    /// The one value of header `name`.
    pub(crate) fn header(&self, name: &str) -> String {
        let mut values = self.headers(name);
        assert_eq!(values.len(), 1, "header {name}: {values:?}\n{}", self.raw());
        values.remove(0)
    }

    /// The decoded content of the one leaf part of `content_type`.
    pub(crate) fn part(&self, content_type: &str) -> String {
        let parts: Vec<&Value> = self.0["parts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["content_type"] == content_type)
            .collect();
        assert_eq!(parts.len(), 1, "{content_type} parts in:\n{}", self.raw());
        parts[0]["content"].as_str().unwrap().to_owned()
    }

    fn raw(&self) -> &str {
        self.0["raw"].as_str().unwrap()
    }
}

/// What one delivery is about, owned so that [`Message`]s can borrow it.
struct Letter {
    user: belfry::domain::UserId,
    content: Content,
    contact: Contact,
    delivery_id: Uuid,
}

const PREFERENCES: &str = "https://belfry.test/preferences?user=ada&sig=a%2Bb";
const UNSUBSCRIBE: &str = "https://belfry.test/unsubscribe?token=t0k3n&c=billing";

impl Letter {
    fn new() -> Letter {
        Letter {
            user: user("ada"),
            content: Content {
                category: Category::parse("billing").unwrap(),
                priority: Priority::High,
                critical: false,
                title: Title::parse("Payment <failed> for \"Café & Co\" ✓").unwrap(),
                body: Body::parse(
                    "Your card was declined <script>alert(1)</script>.\nPlease update it.\n\n\
                     Ref: A&B",
                )
                .unwrap(),
                data: Payload::default(),
                action_url: Some(
                    Link::parse("action_url", "https://app.belfry.test/billing?x=1&y=\"2\"")
                        .unwrap(),
                ),
                icon: None,
            },
            contact: Contact {
                display_name: Some("Ada Lovelace".to_owned()),
                email: Some("ada@example.org".to_owned()),
                ..Contact::default()
            },
            delivery_id: Uuid::now_v7(),
        }
    }

    fn attempt(&self, at: DateTime<Utc>) -> Message<'_> {
        Message {
            delivery_id: self.delivery_id,
            notification_id: NotificationId::from_uuid(Uuid::from_u128(42)),
            recipient: &self.user,
            content: &self.content,
            contact: &self.contact,
            sent_at: Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap(),
            attempt_at: at,
            preferences_url: Some(PREFERENCES),
            unsubscribe_url: Some(UNSUBSCRIBE),
            digest: None,
        }
    }
}

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 9, minute, 0).unwrap()
}

/// The provider id of an accepted attempt (the sink always gives one).
fn accepted(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Accepted {
            provider_id: Some(id),
        } => id.clone(),
        other => panic!("expected the message accepted with an id, got {other:?}"),
    }
}

fn transient(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Transient { error, .. } => error,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

fn permanent(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Permanent { error } => error,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn an_email_arrives_with_its_headers_and_both_parts() {
    let mut sink = Sink::start(&[]).await;
    let channel = EmailChannel::new(&sink.settings("")).unwrap();
    let letter = Letter::new();

    let outcome = channel.deliver(&letter.attempt(at(0))).await;
    let got = sink.received().await;

    assert_eq!(got.0["queue_id"], accepted(&outcome));
    assert_eq!(got.0["mail_from"], "noreply@belfry.test");
    assert_eq!(got.0["rcpt_tos"], serde_json::json!(["ada@example.org"]));
    assert_eq!(got.header("From"), "Belfry Alerts <noreply@belfry.test>");
    assert_eq!(got.header("Reply-To"), "Support <help@belfry.test>");
    assert_eq!(got.header("To"), "Ada Lovelace <ada@example.org>");
    assert_eq!(
        got.header("Subject"),
        "Payment <failed> for \"Café & Co\" ✓"
    );
    assert_eq!(
        got.header("Message-ID"),
        format!("<{}@belfry.test>", letter.delivery_id)
    );
    assert_eq!(got.header("Date"), "Mon, 04 May 2026 09:00:00 +0000");
    assert_eq!(got.header("List-Unsubscribe"), format!("<{UNSUBSCRIBE}>"));
    assert_eq!(
        got.header("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(
        got.header("X-Belfry-Delivery-Id"),
        letter.delivery_id.to_string()
    );
    assert_eq!(
        got.header("X-Belfry-Notification-Id"),
        Uuid::from_u128(42).to_string()
    );
    assert_eq!(got.0["content_type"], "multipart/alternative");

    let text = got.part("text/plain");
    assert!(
        text.starts_with(
            "Payment <failed> for \"Café & Co\" ✓\n\nYour card was declined \
             <script>alert(1)</script>.\nPlease update it.\n\nRef: A&B\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("Open: https://app.belfry.test/billing?x=1&y=\"2\"\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Manage your notification preferences: {PREFERENCES}"
        )),
        "{text}"
    );

    let html = got.part("text/html");
    for expected in [
        "<title>Payment &lt;failed&gt; for &quot;Café &amp; Co&quot; ✓</title>",
        "<p>Your card was declined &lt;script&gt;alert(1)&lt;/script&gt;.<br>\nPlease update it.</p>",
        "<p>Ref: A&amp;B</p>",
        "<a href=\"https://app.belfry.test/billing?x=1&amp;y=&quot;2&quot;\"",
        "<a href=\"https://belfry.test/preferences?user=ada&amp;sig=a%2Bb\">Manage your notification preferences</a>",
    ] {
        assert!(html.contains(expected), "{expected:?} missing from:\n{html}");
    }
    assert!(!html.contains("<script>"), "{html}");
    sink.assert_quiet();
}

/// `preferences_url` set: both parts link to it (escaped in HTML); unset: neither has a link.
#[tokio::test]
async fn the_link_to_manage_preferences_is_in_both_parts_only_when_configured() {
    let mut sink = Sink::start(&[]).await;
    let channel = EmailChannel::new(&sink.settings("")).unwrap();
    let letter = Letter::new();
    let manage = "Manage your notification preferences";

    accepted(&channel.deliver(&letter.attempt(at(0))).await);
    let with = sink.received().await;
    let text = with.part("text/plain");
    assert!(
        text.contains(&format!("{manage}: {PREFERENCES}\n")),
        "{text}"
    );
    let html = with.part("text/html");
    assert!(
        html.contains(&format!(
            "<a href=\"https://belfry.test/preferences?user=ada&amp;sig=a%2Bb\">{manage}</a>"
        )),
        "{html}"
    );

    let mut unset = letter.attempt(at(1));
    unset.preferences_url = None;
    accepted(&channel.deliver(&unset).await);
    let without = sink.received().await;
    for part in ["text/plain", "text/html"] {
        let content = without.part(part);
        assert!(
            !content.contains(manage) && !content.contains("belfry.test/preferences"),
            "{part}: {content}"
        );
        assert!(
            content.contains("Your card was declined"),
            "{part}: {content}"
        );
    }
    sink.assert_quiet();
}

#[tokio::test]
async fn every_attempt_of_one_delivery_carries_the_same_message_id() {
    let mut sink = Sink::start(&[]).await;
    let channel = EmailChannel::new(&sink.settings("")).unwrap();
    let letter = Letter::new();
    let other = Letter::new();

    for (message, minute) in [
        (letter.attempt(at(1)), 1),
        (letter.attempt(at(7)), 7),
        (other.attempt(at(8)), 8),
    ] {
        let outcome = channel.deliver(&message).await;
        let got = sink.received().await;
        assert_eq!(got.0["queue_id"], accepted(&outcome));
        assert_eq!(
            got.header("Message-ID"),
            format!("<{}@belfry.test>", message.delivery_id)
        );
        assert_eq!(
            got.header("Date"),
            format!("Mon, 04 May 2026 09:{minute:02}:00 +0000")
        );
    }
    assert_ne!(letter.delivery_id, other.delivery_id);
}

#[tokio::test]
async fn a_451_is_transient_and_the_next_attempt_is_accepted() {
    let mut sink = Sink::start(&["--refuse-first", "1", "--refuse-code", "451"]).await;
    let channel = EmailChannel::new(&sink.settings("")).unwrap();
    let letter = Letter::new();

    let first = channel.deliver(&letter.attempt(at(0))).await;
    let error = transient(&first);
    assert_eq!(
        error,
        format!(
            "the SMTP server 127.0.0.1:{} refused the message for now: 451 4.3.0 Mail server \
             temporarily unavailable",
            sink.port
        )
    );
    assert_eq!(sink.next().await["refused"], 451);

    let second = channel.deliver(&letter.attempt(at(1))).await;
    let queue_id = accepted(&second);
    let got = sink.received().await;
    assert_eq!(got.0["queue_id"], queue_id);
    assert_eq!(
        got.header("Message-ID"),
        format!("<{}@belfry.test>", letter.delivery_id)
    );
}

#[tokio::test]
async fn a_550_is_permanent_in_the_servers_words_without_the_address() {
    let mut sink = Sink::start(&[
        "--reject-all",
        "550",
        "--reject-text",
        "5.1.1 <ada@example.org>: Recipient address rejected",
    ])
    .await;
    let channel = EmailChannel::new(&sink.settings("")).unwrap();
    let letter = Letter::new();

    let outcome = channel.deliver(&letter.attempt(at(0))).await;
    assert_eq!(
        permanent(&outcome),
        format!(
            "the SMTP server 127.0.0.1:{} rejected the message: 550 5.1.1 <[recipient]>: \
             Recipient address rejected",
            sink.port
        )
    );
    assert_eq!(sink.next().await["refused"], 550);
    sink.assert_quiet();
}

#[tokio::test]
async fn a_server_that_is_not_listening_is_transient() {
    // A port that was just free: nothing listens on it once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let channel = EmailChannel::new(&settings(&format!(
        "host = \"127.0.0.1\"\nport = {port}\ntls = \"none\""
    )))
    .unwrap();
    let letter = Letter::new();

    let outcome = channel.deliver(&letter.attempt(at(0))).await;
    assert_eq!(
        transient(&outcome),
        format!(
            "could not connect to the SMTP server 127.0.0.1:{port}: connection refused (is it \
             running, on this port?)"
        )
    );
}

#[tokio::test]
async fn a_contact_without_an_email_is_permanent_and_nothing_connects() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let channel = EmailChannel::new(&settings(&format!(
        "host = \"127.0.0.1\"\nport = {port}\ntls = \"none\""
    )))
    .unwrap();
    let mut letter = Letter::new();
    letter.contact.email = None;

    let outcome = channel.deliver(&letter.attempt(at(0))).await;
    assert_eq!(permanent(&outcome), "the recipient has no email address");

    letter.contact.email = Some("ada at example.org".to_owned());
    let outcome = channel.deliver(&letter.attempt(at(0))).await;
    let error = permanent(&outcome);
    assert!(
        error.starts_with("the recipient's email address is not valid"),
        "{error}"
    );
    assert!(!error.contains("ada"), "{error}");

    // A connection attempt would be waiting in the backlog by now.
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the channel connected: {accepted:?}"
    );
}

#[tokio::test]
async fn a_server_that_stops_answering_is_given_up_on_and_the_next_attempt_goes_through() {
    let mut sink = Sink::start(&["--stall-first", "1"]).await;
    let channel = EmailChannel::new(&sink.settings("timeout_secs = 1")).unwrap();
    let letter = Letter::new();

    let first = channel.deliver(&letter.attempt(at(0))).await;
    assert_eq!(
        transient(&first),
        format!(
            "the SMTP server 127.0.0.1:{} did not finish answering within 1 s \
             (smtp.timeout_secs)",
            sink.port
        )
    );
    assert_eq!(sink.next().await["stalled"], true);
    // lettre hands the abandoned connection back to its pool from a task it spawns; let that
    // task run (this runtime has one thread), so that the next attempt would be given that
    // connection, mid-command, if the channel kept the pool.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }

    let second = channel.deliver(&letter.attempt(at(1))).await;
    let queue_id = accepted(&second);
    assert_eq!(sink.received().await.0["queue_id"], queue_id);
}

/// A throwaway CA, a certificate it signed for 127.0.0.1, and an unrelated CA, made once per
/// run with openssl.
struct Certs {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Certs {
    /// The server's certificate and key, as the sink's arguments.
    fn server(&self) -> (&str, &str) {
        (self.cert.to_str().unwrap(), self.key.to_str().unwrap())
    }
}

fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let ca_ext = [
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ];
        for (name, cn) in [
            ("ca", "Belfry test SMTP CA"),
            ("other-ca", "Belfry unrelated CA"),
        ] {
            openssl(
                dir.path(),
                &[
                    &["req", "-x509", "-days", "2", "-subj", &format!("/CN={cn}")][..],
                    &ec,
                    &ca_ext,
                    &[
                        "-keyout",
                        &format!("{name}.key"),
                        "-out",
                        &format!("{name}.crt"),
                    ],
                ]
                .concat(),
            );
        }
        openssl(
            dir.path(),
            &[
                &["req", "-new", "-subj", "/CN=127.0.0.1"][..],
                &ec,
                &["-keyout", "server.key", "-out", "server.csr"],
            ]
            .concat(),
        );
        std::fs::write(
            p("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            dir.path(),
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-extfile",
                "server.ext",
                "-out",
                "server.crt",
            ],
        );
        Certs {
            ca: p("ca.crt"),
            other_ca: p("other-ca.crt"),
            cert: p("server.crt"),
            key: p("server.key"),
            _dir: dir,
        }
    })
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn tls_settings(sink: &Sink, tls: &str, ca: &Path, extra: &str) -> SmtpSettings {
    settings(&format!(
        "host = \"127.0.0.1\"\nport = {}\ntls = \"{tls}\"\nca_file = {:?}\n{extra}",
        sink.port,
        ca.to_str().unwrap()
    ))
}

#[tokio::test]
async fn starttls_with_the_private_ca_and_a_login_is_accepted() {
    let c = certs();
    let (cert, key) = c.server();
    let mut sink = Sink::start(&["--starttls", cert, key, "--auth", "belfry:s3cret"]).await;
    let channel = EmailChannel::new(&tls_settings(
        &sink,
        "starttls",
        &c.ca,
        "username = \"belfry\"\npassword = \"s3cret\"",
    ))
    .unwrap();
    let letter = Letter::new();

    let outcome = channel.deliver(&letter.attempt(at(0))).await;
    let queue_id = accepted(&outcome);
    let got = sink.received().await;
    assert_eq!(got.0["queue_id"], queue_id);
    assert_eq!(got.0["tls"], true);
    assert_eq!(got.0["auth"], "belfry");
}

#[tokio::test]
async fn implicit_tls_with_the_private_ca_is_accepted() {
    let c = certs();
    let (cert, key) = c.server();
    let mut sink = Sink::start(&["--implicit-tls", cert, key]).await;
    let channel = EmailChannel::new(&tls_settings(&sink, "tls", &c.ca, "")).unwrap();
    let letter = Letter::new();

    let outcome = channel.deliver(&letter.attempt(at(0))).await;
    let queue_id = accepted(&outcome);
    let got = sink.received().await;
    assert_eq!(got.0["queue_id"], queue_id);
    assert_eq!(got.0["tls"], true);
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused_and_nothing_is_sent() {
    let c = certs();
    let (cert, key) = c.server();
    for (mode, args) in [("starttls", "--starttls"), ("tls", "--implicit-tls")] {
        let mut sink = Sink::start(&[args, cert, key]).await;
        let channel = EmailChannel::new(&tls_settings(&sink, mode, &c.other_ca, "")).unwrap();
        let letter = Letter::new();

        let outcome = channel.deliver(&letter.attempt(at(0))).await;
        assert_eq!(
            transient(&outcome),
            format!(
                "TLS with the SMTP server 127.0.0.1:{} failed: the server's certificate is not \
                 signed by a certificate authority Belfry trusts (the one in smtp.ca_file when \
                 set, else the public ones)",
                sink.port
            ),
            "tls = {mode}"
        );
        sink.assert_quiet();
    }
}
