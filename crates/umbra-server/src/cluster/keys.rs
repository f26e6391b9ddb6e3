//! Every Redis key and channel cluster mode uses, in one place.

/// A node's presence record (JSON [`super::placement::NodeRecord`]), with expiry.
pub fn node(id: &str) -> String {
    format!("umbra:node:{id}")
}

/// The set of node ids ever announced; entries whose `node` key expired are dead.
pub const NODES: &str = "umbra:nodes";

/// Which node hosts a live session, with expiry.
pub fn home(session_id: &str) -> String {
    format!("umbra:home:{session_id}")
}

/// A live session's mirrored state (JSON `RoomSnapshot`).
pub fn room(session_id: &str) -> String {
    format!("umbra:room:{session_id}")
}

/// Where a node receives operations on the sessions it hosts.
pub fn ops_channel(node_id: &str) -> String {
    format!("umbra:ops:{node_id}")
}

/// Where a node receives the replies to the operations it sent.
pub fn replies_channel(node_id: &str) -> String {
    format!("umbra:replies:{node_id}")
}
