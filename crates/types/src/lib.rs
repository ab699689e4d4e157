//! serde models of Docker Engine API objects shared by the engine and the API layer.
