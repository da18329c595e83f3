//! The email one attempt sends: who it is from and to, its headers (the same `Message-ID` on
//! every attempt, the one-click unsubscribe pair) and its text and HTML parts. No I/O.

use std::time::SystemTime;

use lettre::message::header::{HeaderName, HeaderValue, MessageId};
use lettre::message::{Mailbox, MultiPart};
use lettre::Address;

use crate::delivery::{DigestBody, Message};
use crate::domain::Link;

/// Who a message is from, and where the links it carries lead: the parts of
/// [`SmtpSettings`](super::SmtpSettings) that [`build_email`] needs.
#[derive(Debug, Clone)]
pub struct Originator {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// Without a trailing slash.
    pub app_url: Option<String>,
}

/// Why a message could not be built: trying again would not help.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    #[error("the recipient has no email address")]
    NoAddress,
    #[error("the recipient's email address is not valid ({0})")]
    BadAddress(String),
    #[error("the unsubscribe URL cannot be a List-Unsubscribe header (it must be ASCII without spaces or angle brackets)")]
    BadUnsubscribeUrl,
    #[error("the message cannot be built: {0}")]
    Message(String),
}

/// The email for one attempt: the same `Message-ID` on every attempt of one delivery, a text
/// and an HTML part, and the one-click unsubscribe headers when there is a URL for them.
pub fn build_email(
    originator: &Originator,
    message: &Message<'_>,
) -> Result<lettre::Message, BuildError> {
    let raw = message
        .contact
        .email
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        .ok_or(BuildError::NoAddress)?;
    let address: Address = raw
        .trim()
        .parse()
        .map_err(|e: lettre::address::AddressError| BuildError::BadAddress(e.to_string()))?;
    let name = message
        .contact
        .display_name
        .as_deref()
        .map(|n| n.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|n| !n.trim().is_empty());
    let to = Mailbox::new(name, address);

    let content = message.content;
    let action = content
        .action_url
        .as_ref()
        .and_then(|link| absolute(originator, link));
    let parts = Parts {
        title: content.title.as_str(),
        body: content.body.as_str(),
        action: action.as_deref(),
        preferences: message.preferences_url,
        locale: message.contact.locale.as_deref(),
    };
    let (text, html) = match message.digest {
        Some(digest) => {
            let listed = Listed::of(originator, digest, message.contact.time_zone.as_deref());
            (parts.digest_text(&listed), parts.digest_html(&listed))
        }
        None => (parts.text(), parts.html()),
    };
    let (id_header, id) = match message.digest {
        Some(digest) => ("X-Belfry-Digest-Id", digest.digest_id.to_string()),
        None => (
            "X-Belfry-Notification-Id",
            message.notification_id.to_string(),
        ),
    };

    let mut builder = lettre::Message::builder()
        .from(originator.from.clone())
        .to(to)
        .subject(content.title.as_str())
        .date(SystemTime::from(message.attempt_at))
        .header(MessageId::from(format!(
            "<{}@{}>",
            message.delivery_id,
            originator.from.email.domain()
        )))
        .raw_header(header("Auto-Submitted", "auto-generated".to_owned()))
        .raw_header(header(id_header, id))
        .raw_header(header(
            "X-Belfry-Delivery-Id",
            message.delivery_id.to_string(),
        ));
    if let Some(reply_to) = &originator.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    if let Some(url) = message.unsubscribe_url {
        let plain = url.is_ascii()
            && !url
                .chars()
                .any(|c| c.is_ascii_whitespace() || c.is_ascii_control() || c == '<' || c == '>');
        if !plain {
            return Err(BuildError::BadUnsubscribeUrl);
        }
        builder = builder
            .raw_header(header("List-Unsubscribe", format!("<{url}>")))
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| BuildError::Message(e.to_string()))
}

/// A notification's link as an email can carry it: one relative to the app made absolute
/// when the server knows the app's URL, and left out when it does not.
fn absolute(originator: &Originator, link: &Link) -> Option<String> {
    let link = link.as_str();
    if link.starts_with('/') {
        originator
            .app_url
            .as_ref()
            .map(|base| format!("{base}{link}"))
    } else {
        Some(link.to_owned())
    }
}

/// A digest's notifications as its email lists them: each one's title, body, link and when
/// it was sent, in the person's time zone.
pub(super) struct Listed {
    pub(super) items: Vec<ListedItem>,
}

pub(super) struct ListedItem {
    pub(super) title: String,
    pub(super) body: String,
    pub(super) action: Option<String>,
    pub(super) when: String,
}

impl Listed {
    pub(super) fn of(
        originator: &Originator,
        digest: &DigestBody,
        time_zone: Option<&str>,
    ) -> Self {
        let zone = crate::domain::quiet::zone_of(time_zone);
        Listed {
            items: digest
                .items
                .iter()
                .map(|item| ListedItem {
                    title: item.content.title.as_str().to_owned(),
                    body: item.content.body.as_str().trim().to_owned(),
                    action: item
                        .content
                        .action_url
                        .as_ref()
                        .and_then(|link| absolute(originator, link)),
                    when: item
                        .sent_at
                        .with_timezone(&zone)
                        .format("%a %e %b, %H:%M %Z")
                        .to_string(),
                })
                .collect(),
        }
    }
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// What both parts show.
pub(super) struct Parts<'a> {
    pub(super) title: &'a str,
    pub(super) body: &'a str,
    pub(super) action: Option<&'a str>,
    pub(super) preferences: Option<&'a str>,
    pub(super) locale: Option<&'a str>,
}

impl Parts<'_> {
    pub(super) fn text(&self) -> String {
        let mut text = format!("{}\n", self.title);
        if !self.body.trim().is_empty() {
            text.push('\n');
            text.push_str(self.body.trim_end());
            text.push('\n');
        }
        if let Some(url) = self.action {
            text.push_str(&format!("\nOpen: {url}\n"));
        }
        self.footer_text(&mut text);
        text
    }

    /// A digest's text part: its heading, then each notification, newest first.
    pub(super) fn digest_text(&self, listed: &Listed) -> String {
        let mut text = format!("{}\n", self.title);
        for item in &listed.items {
            text.push_str(&format!("\n* {} ({})\n", item.title, item.when));
            for line in item.body.lines() {
                text.push_str(&format!("  {line}\n"));
            }
            if let Some(url) = &item.action {
                text.push_str(&format!("  Open: {url}\n"));
            }
        }
        self.footer_text(&mut text);
        text
    }

    /// A digest's HTML part: its heading and a list of its notifications, newest first.
    pub(super) fn digest_html(&self, listed: &Listed) -> String {
        let mut html = self.head();
        html.push_str("<ul style=\"list-style: none; padding: 0;\">\n");
        for item in &listed.items {
            html.push_str(&format!(
                "<li style=\"margin: 0 0 1em; padding: 0 0 1em; border-bottom: 1px solid \
                 #d1d9e0;\">\n<strong>{}</strong> <span style=\"color: #59636e; font-size: \
                 0.875em;\">{}</span>\n",
                escape(&item.title),
                escape(&item.when)
            ));
            if !item.body.is_empty() {
                let lines: Vec<String> = item.body.lines().map(escape).collect();
                html.push_str(&format!(
                    "<p style=\"margin: 0.25em 0;\">{}</p>\n",
                    lines.join("<br>\n")
                ));
            }
            if let Some(url) = &item.action {
                html.push_str(&format!("<a href=\"{}\">Open</a>\n", escape(url)));
            }
            html.push_str("</li>\n");
        }
        html.push_str("</ul>\n");
        self.footer_html(&mut html);
        html
    }

    fn footer_text(&self, text: &mut String) {
        if let Some(url) = self.preferences {
            text.push_str(&format!(
                "\n-- \nManage your notification preferences: {url}\n"
            ));
        }
    }

    fn head(&self) -> String {
        let lang = self
            .locale
            .map(|l| format!(" lang=\"{}\"", escape(l)))
            .unwrap_or_default();
        let title = escape(self.title);
        format!(
            "<!DOCTYPE html>\n<html{lang}>\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width\">\n<title>{title}</title>\n\
             </head>\n<body style=\"font-family: sans-serif; line-height: 1.5; color: #1f2328;\">\n\
             <h1 style=\"font-size: 1.25em;\">{title}</h1>\n"
        )
    }

    fn footer_html(&self, html: &mut String) {
        if let Some(url) = self.preferences {
            html.push_str(&format!(
                "<hr style=\"border: none; border-top: 1px solid #d1d9e0;\">\n\
                 <p style=\"font-size: 0.875em; color: #59636e;\"><a href=\"{}\">Manage your \
                 notification preferences</a></p>\n",
                escape(url)
            ));
        }
        html.push_str("</body>\n</html>\n");
    }

    pub(super) fn html(&self) -> String {
        let mut html = self.head();
        for paragraph in self
            .body
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let lines: Vec<String> = paragraph.lines().map(escape).collect();
            html.push_str(&format!("<p>{}</p>\n", lines.join("<br>\n")));
        }
        if let Some(url) = self.action {
            html.push_str(&format!(
                "<p><a href=\"{}\" style=\"display: inline-block; padding: 0.5em 1em; \
                 background: #0969da; color: #ffffff; text-decoration: none; border-radius: \
                 6px;\">Open</a></p>\n",
                escape(url)
            ));
        }
        self.footer_html(&mut html);
        html
    }
}

/// `text` safe in HTML element content and in a quoted attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
