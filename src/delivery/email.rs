//! The email channel: SMTP.
