package console

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// lang is a language of the catalog: "en" or "zh".
type lang string

// langOrder is the order of the language switch.
var langOrder = []string{"en", "zh"}

// T is the message key in l, with args filled in by fmt verbs. A key missing in l falls back
// to English, then to the key itself, so a missing translation shows, never breaks a page.
func (l lang) T(key string, args ...any) string {
	msg, ok := catalog[string(l)][key]
	if !ok {
		if msg, ok = catalog["en"][key]; !ok {
			msg = key
		}
	}
	if len(args) > 0 {
		return fmt.Sprintf(msg, args...)
	}
	return msg
}

// Tag is l as an HTML lang attribute.
func (l lang) Tag() string {
	if l == "zh" {
		return "zh-CN"
	}
	return "en"
}

// lang is the language of c: the switch's cookie, else the best of Accept-Language, else
// English.
func (cn *Console) lang(c *gin.Context) lang {
	if v, err := c.Cookie(langCookie); err == nil {
		if _, ok := catalog[v]; ok {
			return lang(v)
		}
	}
	return fromAcceptLanguage(c.GetHeader("Accept-Language"))
}

// fromAcceptLanguage picks the catalog language the header weighs highest.
func fromAcceptLanguage(h string) lang {
	type choice struct {
		l lang
		q float64
	}
	var cs []choice
	for i, part := range strings.Split(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if _, ok := catalog[base]; ok && q > 0 {
			// Earlier entries win ties, as the header means.
			cs = append(cs, choice{lang(base), q - float64(i)*1e-6})
		}
	}
	if len(cs) == 0 {
		return "en"
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].q > cs[j].q })
	return cs[0].l
}
