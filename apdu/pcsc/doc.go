// Package pcsc is the PC/SC transport: the only package that imports
// github.com/ebfe/scard (cgo on Linux and macOS, winscard.dll on Windows).
// Everything it returns is expressed in the types of package apdu.
//
// Design rules, learned from PC/SC in the field (see docs/pcsc-transport.md):
//
//   - Each connected card gets its own PC/SC context. pcsc-lite serialises
//     calls per context, so a card that stops answering must not block the
//     reader monitor, the SAM, or another reader.
//   - Every blocking call (SCardTransmit, SCardBeginTransaction) runs under a
//     deadline. The C call cannot be interrupted, so on expiry the caller gets
//     apdu.ErrTimeout at once and the handle is quarantined until the call
//     returns; the card must then be reconnected.
//   - The monitor blocks in SCardGetStatusChange on all readers plus the
//     \\?PnP?\Notification pseudo-reader; it never polls. When the service
//     goes away it re-establishes its context with capped exponential
//     backoff and reports ServiceLost / ServiceRestored.
//   - Connections are shared-mode; exclusive access for one logical operation
//     is taken with BeginTransaction / EndTransaction.
package pcsc
