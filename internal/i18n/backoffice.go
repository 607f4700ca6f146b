package i18n

// backoffice holds the back office's pages for its staff (staff.*).
var backoffice = table{}
