//! The webhook channel: a signed HTTP POST per delivery (Standard Webhooks).
