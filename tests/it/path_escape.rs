//! Header values and file names that reach paths cannot escape their base directory.
