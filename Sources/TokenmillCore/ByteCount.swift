import CIntrinsics

/// How many bytes of `bytes` equal `b`, 32 a step (AVX2, `tm_count_byte`).
public func countBytes(_ bytes: UnsafeBufferPointer<UInt8>, equalTo b: UInt8) -> Int {
    guard let base = bytes.baseAddress, !bytes.isEmpty else { return 0 }
    return tm_count_byte(base, bytes.count, b)
}
