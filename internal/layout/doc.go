// Package layout holds no code: its tests check the repository's layout
// rules (which packages the shipped binaries may link, where raw APDUs
// may be built). docs/layout.md states the rules.
package layout
