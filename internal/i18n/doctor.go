package i18n

// doctor holds kpectl doctor's findings and actions, for the technician
// (doctor.*).
var doctor = table{}
