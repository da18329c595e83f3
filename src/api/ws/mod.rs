//! GraphQL over WebSocket: one task per socket runs the protocol state machine and polls all
//! of the socket's operations, so a socket costs one task, small buffers and bounded queues.
//! Close codes follow graphql-transport-ws exactly: 4400 invalid message, 4401 subscribe
//! before ack, 4403 refused credentials, 4408 no `connection_init` in time, 4409 duplicate
//! operation id, 4429 a second `connection_init`; 1001 when the server shuts down.

pub mod connection;
pub mod protocol;

pub use connection::{serve, WsConfig};
pub use protocol::Protocol;
