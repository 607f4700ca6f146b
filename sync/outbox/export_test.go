package outbox

// SetCompactHook sets the function Compact calls at each of CompactSteps
// (the kill -9 test's child stops itself at one).
func SetCompactHook(f func(step string)) { compactHook = f }
