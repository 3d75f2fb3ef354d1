package geoip

// byCode indexes countryList (names_gen.go) by the two letters of a code,
// as position+1 (0: not a country), so that Name and canonical need neither
// a map nor an allocation.
var byCode = func() (idx [26 * 26]uint16) {
	for i, c := range countryList {
		idx[int(c.code[0]-'A')*26+int(c.code[1]-'A')] = uint16(i + 1)
	}
	return idx
}()

// lookupCode returns the countryList position+1 of code, in either case,
// or 0.
func lookupCode(code string) int {
	if len(code) != 2 {
		return 0
	}
	a, b := code[0]&^0x20, code[1]&^0x20 // ASCII upper case
	if a < 'A' || a > 'Z' || b < 'A' || b > 'Z' {
		return 0
	}
	return int(byCode[int(a-'A')*26+int(b-'A')])
}

// Name returns the English short name of a country ("CZ" → "Czechia") from
// ISO 3166-1 as published by Debian's iso-codes, plus "XK" for Kosovo, which
// ISO has not assigned but the databases use. The code may be in either
// case. Unknown codes, including regions such as "EU", return "".
func Name(code string) string {
	if i := lookupCode(code); i > 0 {
		return countryList[i-1].name
	}
	return ""
}

// canonical maps a country code from a database to the code Country
// returns: upper case, "UK" (reserved by ISO for the United Kingdom and
// still found in the tor data) as "GB", and "" for anything that is not a
// country (unknown "??", "ZZ", regions "EU" and "AP", withdrawn codes such
// as "CS" or "AN" whose successor is ambiguous). Country therefore never
// returns a code for which Name is "".
func canonical(code string) string {
	if code == "UK" || code == "uk" {
		code = "GB"
	}
	if i := lookupCode(code); i > 0 {
		return countryList[i-1].code
	}
	return ""
}
