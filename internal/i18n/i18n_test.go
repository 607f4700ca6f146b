package i18n

import (
	"errors"
	"testing"
)

func TestParseAcceptsCodesWithRegionsAndCase(t *testing.T) {
	for in, want := range map[string]Lang{"id": Indonesian, "ID": Indonesian, "id-ID": Indonesian, "id_ID": Indonesian,
		"in": Indonesian, "en": English, "EN-gb": English, " en ": English} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fr", "english", "e", "-en"} {
		_, err := Parse(in)
		var ue *ErrUnsupported
		if !errors.As(err, &ue) || ue.Value != in {
			t.Errorf("Parse(%q): %v, want *ErrUnsupported", in, err)
		}
	}
}

func TestNegotiateFollowsTheLanguageRule(t *testing.T) {
	cases := []struct {
		name                string
		query, body, accept string
		configured          Lang
		want                Lang
	}{
		{"query first", "en", "id", "id", Indonesian, English},
		{"then the body", "", "en", "id", Indonesian, English},
		{"an unsupported query passes on", "fr", "en", "", Indonesian, English},
		{"then Accept-Language", "", "", "en-US,en;q=0.9", Indonesian, English},
		{"quality decides", "", "", "en;q=0.3, id;q=0.8", English, Indonesian},
		{"q=0 refuses", "", "", "en;q=0, fr", Indonesian, Indonesian},
		{"unsupported languages pass on", "", "", "fr-FR, de", English, English},
		{"a broken header passes on", "", "", ";;;q=x", English, English},
		{"a malformed entry spoils only itself", "", "", "x-bogus-tag-verylongsubtag, en", Indonesian, English},
		{"equal quality: the first wins", "", "", "en, id", Indonesian, English},
		{"every language refused", "", "", "id;q=0, en;q=0", English, English},
		{"then the configuration", "", "", "", English, English},
		{"then Indonesian", "", "", "", "", Indonesian},
		{"an unknown configured language is Indonesian", "", "", "", "xx", Indonesian},
	}
	for _, c := range cases {
		if got := Negotiate(c.query, c.body, c.accept, c.configured); got != c.want {
			t.Errorf("%s: Negotiate(%q, %q, %q, %q) = %q, want %q", c.name, c.query, c.body, c.accept, c.configured, got, c.want)
		}
	}
}

func TestAudienceKeys(t *testing.T) {
	if Clerk.Key("no-card") != "clerk.no-card" || Holder.Key("no-card") != "holder.no-card" {
		t.Fatal("audience keys")
	}
	for in, want := range map[string]Audience{"": Clerk, "clerk": Clerk, "Holder": Holder} {
		if got, err := ParseAudience(in); err != nil || got != want {
			t.Errorf("ParseAudience(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseAudience("kiosk"); err == nil {
		t.Error("ParseAudience(kiosk) must fail")
	}
}

func FuzzNegotiate(f *testing.F) {
	f.Add("en", "", "en-US,en;q=0.9,id;q=0.8", "id")
	f.Add("", "", "*;q=0.5, in", "")
	f.Fuzz(func(t *testing.T, q, b, a, c string) {
		got := Negotiate(q, b, a, Lang(c))
		if got != Indonesian && got != English {
			t.Fatalf("Negotiate returned %q", got)
		}
	})
}
