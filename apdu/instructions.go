package apdu

// Interindustry class and instruction bytes (ISO/IEC 7816-4 §5.4 and §11)
// of the commands this package and the card profiles send. The lab's card
// side (lab/cardsim and its applets) dispatches on the same values, so a
// change is made in one place.
const (
	// CLAInterindustry is the first interindustry class without secure
	// messaging or chaining, on the basic logical channel.
	CLAInterindustry byte = 0x00

	InsVerify               byte = 0x20 // VERIFY (even INS: plain reference data)
	InsVerifyBERTLV         byte = 0x21 // VERIFY, odd INS: BER-TLV data (biometric 7F2E)
	InsExternalAuthenticate byte = 0x82 // EXTERNAL AUTHENTICATE (the mutual form of ICAO BAC)
	InsGetChallenge         byte = 0x84 // GET CHALLENGE
	InsSelect               byte = 0xA4 // SELECT
	InsReadBinary           byte = 0xB0 // READ BINARY, offset in P1-P2
	InsReadBinaryOdd        byte = 0xB1 // READ BINARY, offset data object 54
	InsGetResponse          byte = 0xC0 // GET RESPONSE
	InsGetData              byte = 0xCA // GET DATA (also the PC/SC part 3 pseudo-APDU, see GetUID)
)

// SELECT parameters (ISO/IEC 7816-4 §11.2.2, tables 63 and 64).
const (
	// SelectByFID (P1): MF, DF or EF by file identifier under the current DF.
	SelectByFID byte = 0x00
	// SelectChildEF (P1): EF by file identifier under the current DF.
	SelectChildEF byte = 0x02
	// SelectByName (P1): DF by name, that is an application by its AID.
	SelectByName byte = 0x04

	// SelectReturnFCI (P2): first or only occurrence, return the FCI.
	SelectReturnFCI byte = 0x00
	// SelectReturnFCP (P2): return the FCP template.
	SelectReturnFCP byte = 0x04
	// SelectNoResponse (P2): no response data (and no Le field).
	SelectNoResponse byte = 0x0C
)

// MaxAIDLen is the longest application identifier (ISO/IEC 7816-4 §12.2.3).
const MaxAIDLen = 16
