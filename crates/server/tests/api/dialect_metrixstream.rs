//! The metrixstream dialect, over real HTTP (tests land with the dialect).
