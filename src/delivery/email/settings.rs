//! The `[smtp]` settings: read with serde, checked, and turned into the transport they
//! describe and the [`Originator`] of every message.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::Originator;

/// The `[smtp]` settings: the server, how to reach it, and who the mail is from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// The SMTP server's host name (checked against its TLS certificate) or address.
    #[serde(default = "default_host")]
    pub host: String,
    /// Unset: 25 for `tls = "none"`, 587 for `"starttls"`, 465 for `"tls"`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// With `password`, the account to authenticate as (AUTH PLAIN or LOGIN).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    /// A PEM file with the certificate authority that signed the server's certificate, for a
    /// server with a private CA. When set, only this CA is trusted; unset, the public ones.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The mailbox mail is from, e.g. `Belfry <noreply@example.com>`; its domain also names
    /// the `Message-ID`s.
    pub from: String,
    /// A mailbox replies go to instead of `from`.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The app's public URL, e.g. `https://app.example.com`: relative action links
    /// (`/orders/42`) are made absolute against it. Without it such a link is left out of
    /// the email, where it could not work.
    #[serde(default)]
    pub app_url: Option<String>,
    /// Most connections to the server kept open at once.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// Seconds one attempt may take, from connecting to the server's last answer.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// How the connection to the SMTP server is encrypted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same host or a trusted network.
    None,
    /// Plain text upgraded with STARTTLS before anything is sent; refused without it.
    #[default]
    Starttls,
    /// TLS from the first byte ("implicit TLS", SMTPS).
    Tls,
}

fn default_host() -> String {
    "localhost".to_owned()
}

fn default_pool_size() -> u32 {
    4
}

fn default_timeout_secs() -> u64 {
    30
}

impl SmtpTls {
    fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

impl SmtpSettings {
    /// Checks the settings as [`EmailChannel::new`] does (mailboxes, credentials, the CA
    /// file), without starting anything.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.prepare().map(drop)
    }

    pub(super) fn port(&self) -> u16 {
        self.port.unwrap_or(self.tls.default_port())
    }

    pub(super) fn prepare(&self) -> anyhow::Result<(Originator, AsyncSmtpTransportBuilder)> {
        let from: Mailbox = self.from.parse().with_context(|| {
            format!(
                "smtp.from = {:?} is not a mailbox such as `Belfry <noreply@example.com>`",
                self.from
            )
        })?;
        let reply_to = match &self.reply_to {
            Some(raw) => Some(raw.parse::<Mailbox>().with_context(|| {
                format!(
                    "smtp.reply_to = {raw:?} is not a mailbox such as `Support <help@example.com>`"
                )
            })?),
            None => None,
        };
        let app_url = match &self.app_url {
            Some(url) => {
                anyhow::ensure!(
                    (url.starts_with("https://") || url.starts_with("http://"))
                        && !url.chars().any(|c| c.is_whitespace() || c.is_control()),
                    "smtp.app_url = {url:?} is not an http(s) URL such as `https://app.example.com`"
                );
                Some(url.trim_end_matches('/').to_owned())
            }
            None => None,
        };
        anyhow::ensure!(!self.host.is_empty(), "smtp.host is empty");
        anyhow::ensure!(self.pool_size >= 1, "smtp.pool_size must be at least 1");
        anyhow::ensure!(
            self.timeout_secs >= 1,
            "smtp.timeout_secs must be at least 1"
        );

        let timeout = Duration::from_secs(self.timeout_secs);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port())
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(self.pool_size))
            .tls(self.tls_parameters()?);
        match (&self.username, &self.password) {
            (Some(user), Some(password)) => {
                anyhow::ensure!(
                    self.tls != SmtpTls::None,
                    "smtp.username and smtp.password are set with smtp.tls = \"none\": the \
                     password would cross the network in clear; use \"starttls\" or \"tls\""
                );
                builder = builder.credentials(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_owned(),
                ));
            }
            (None, Some(_)) => {
                anyhow::bail!("smtp.password is set without smtp.username")
            }
            (Some(_), None) => {
                anyhow::bail!("smtp.username is set without smtp.password")
            }
            (None, None) => {}
        }
        let originator = Originator {
            from,
            reply_to,
            app_url,
        };
        Ok((originator, builder))
    }

    fn tls_parameters(&self) -> anyhow::Result<Tls> {
        if self.tls == SmtpTls::None {
            anyhow::ensure!(
                self.ca_file.is_none(),
                "smtp.ca_file is set but smtp.tls = \"none\" never checks a certificate"
            );
            return Ok(Tls::None);
        }
        let mut params = TlsParameters::builder(self.host.clone());
        if let Some(file) = &self.ca_file {
            let pem = std::fs::read(file)
                .with_context(|| format!("Failed to read smtp.ca_file = {}", file.display()))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("smtp.ca_file = {} is not valid PEM", file.display()))?;
            anyhow::ensure!(
                !certs.is_empty(),
                "smtp.ca_file = {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                file.display()
            );
            params = params.certificate_store(CertificateStore::None);
            for cert in certs {
                params = params.add_root_certificate(
                    Certificate::from_der(cert.to_vec())
                        .context("Failed to read a certificate of smtp.ca_file")?,
                );
            }
        }
        let params = params.build_rustls().with_context(|| match &self.ca_file {
            Some(file) => format!(
                "Failed to set up TLS with smtp.ca_file = {}",
                file.display()
            ),
            None => "Failed to set up TLS".to_owned(),
        })?;
        Ok(match self.tls {
            SmtpTls::Tls => Tls::Wrapper(params),
            _ => Tls::Required(params),
        })
    }
}
