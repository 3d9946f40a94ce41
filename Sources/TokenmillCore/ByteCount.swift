import CIntrinsics

/// How many bytes of `bytes` equal `b`, 32 a step (AVX2, `tm_count_byte`).
/// The first index at or after `from` whose byte is below 0x20 other than \n and \t,
/// 0x7F, or 0xC2 (the lead byte of the C1 controls); `bytes.count` when none is.
public func nextControlByte(_ bytes: UnsafeBufferPointer<UInt8>, from: Int) -> Int {
    guard let base = bytes.baseAddress, from < bytes.count else { return bytes.count }
    return tm_next_control(base, bytes.count, from)
}

public func countBytes(_ bytes: UnsafeBufferPointer<UInt8>, equalTo b: UInt8) -> Int {
    guard let base = bytes.baseAddress, !bytes.isEmpty else { return 0 }
    return tm_count_byte(base, bytes.count, b)
}
