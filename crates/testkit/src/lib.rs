//! placeholder (test kit lands here)
