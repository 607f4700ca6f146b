package i18n

// identity holds the warnings of the identifier cross-checks (NIP, NIK),
// shown to the clerk with a card's data (identity.*).
var identity = table{}
