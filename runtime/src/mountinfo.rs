//! `/proc/<pid>/mountinfo` field decoding shared by the rootfs and cgroup code.

use std::path::PathBuf;

/// Undoes the octal escaping (`\040` for a space, `\134` for a backslash) of a mountinfo path
/// field.
pub fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    #[test]
    fn octal_escapes_are_decoded() {
        assert_eq!(
            super::unescape(r"/a\040b\134c"),
            std::path::PathBuf::from(r"/a b\c")
        );
    }
}
