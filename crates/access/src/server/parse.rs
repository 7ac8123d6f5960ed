//! placeholder (parsers land here)
