#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under /tmp for one test (`mkdtemp`), named after `tag`.
public func makeTemporaryDirectory(_ tag: String) -> String {
    var template = Array("/tmp/tokenmill-\(tag)-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}
