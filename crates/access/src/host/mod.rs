//! placeholder (host access lands here)
