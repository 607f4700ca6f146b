package i18n

// The catalogue is assembled from one table per area, each in a file of
// its own (frontline.go, identity.go, doctor.go, kpectl.go,
// backoffice.go, kiosk.go, loket.go). A key must
// be unique across tables; duplicates lists any that is not, for the
// tests.
var catalogue, duplicates = assemble(frontline, identity, doctor, kpectl, backoffice, kiosk, loket)

type table map[string]Message

func assemble(tables ...table) (map[string]Message, []string) {
	out := map[string]Message{}
	var dup []string
	for _, t := range tables {
		for k, m := range t {
			if _, ok := out[k]; ok {
				dup = append(dup, k)
			}
			out[k] = m
		}
	}
	return out, dup
}
