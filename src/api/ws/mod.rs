//! GraphQL over WebSocket: one task per socket runs the protocol state machine and polls all
//! of the socket's operations, so a socket costs one task, small buffers and bounded queues.
//! Close codes follow graphql-transport-ws exactly: 4400 invalid message, 4401 subscribe
//! before ack, 4403 refused credentials, 4408 no `connection_init` in time, 4409 duplicate
//! operation id, 4429 a second `connection_init`; 1001 when the server shuts down. Beyond
//! the protocol: 4403 also when the token expires, 1007 for a text frame that is not UTF-8,
//! 1008 for a socket with no credentials idle too long, 1009 for a message over the size
//! limit, 1013 for a subscriber too slow to take its messages or credentials that could not
//! be checked.

pub mod connection;
mod ending;
pub mod protocol;

pub use connection::{serve, Credentials, WsConfig};
pub use protocol::Protocol;
