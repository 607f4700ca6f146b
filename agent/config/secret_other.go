//go:build !unix

package config

import "io/fs"

// fileGroup: no Unix groups here (Windows checks no modes anyway).
func fileGroup(fs.FileInfo) (uint32, bool) { return 0, false }

func trustedGroup(uint32) bool { return true }

func apiGroup(uint32) bool { return false }

func groupName(gid uint32) string { return "" }
