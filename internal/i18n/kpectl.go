package i18n

// kpectl holds the sentences of the operator and technician CLI
// (kpectl.*).
var kpectl = table{}
