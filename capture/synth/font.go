package synth

// glyphW and glyphH are the size of the built-in bitmap font, in font pixels.
const (
	glyphW = 5
	glyphH = 7
)

// CodeAlphabet holds the characters a sign's code is drawn from: capital
// letters and digits, without the look-alikes I, O, Q, 0, 1, 5/S, 8/B, 2/Z
// pairs thinned out so that every code reads unambiguously at small sizes.
const CodeAlphabet = "ACEFHJKLMNPRTUVWXY234679"

// font is a 5x7 bitmap font for CodeAlphabet: seven rows of five columns,
// '#' marks an inked pixel.
var font = map[byte][glyphH]string{
	'A': {" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"},
	'C': {" ####", "#    ", "#    ", "#    ", "#    ", "#    ", " ####"},
	'E': {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"},
	'F': {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "},
	'H': {"#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"},
	'J': {"  ###", "    #", "    #", "    #", "    #", "#   #", " ### "},
	'K': {"#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"},
	'L': {"#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"},
	'M': {"#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"},
	'N': {"#   #", "##  #", "# # #", "#  ##", "#   #", "#   #", "#   #"},
	'P': {"#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "},
	'R': {"#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"},
	'T': {"#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "},
	'U': {"#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "},
	'V': {"#   #", "#   #", "#   #", "#   #", " # # ", " # # ", "  #  "},
	'W': {"#   #", "#   #", "#   #", "# # #", "# # #", "## ##", "#   #"},
	'X': {"#   #", " # # ", " # # ", "  #  ", " # # ", " # # ", "#   #"},
	'Y': {"#   #", " # # ", " # # ", "  #  ", "  #  ", "  #  ", "  #  "},
	'2': {" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"},
	'3': {"#### ", "    #", "    #", " ### ", "    #", "    #", "#### "},
	'4': {"   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "},
	'6': {" ### ", "#    ", "#    ", "#### ", "#   #", "#   #", " ### "},
	'7': {"#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "},
	'9': {" ### ", "#   #", "#   #", " ####", "    #", "    #", " ### "},
}

// inked reports whether font pixel (col, row) of character c is inked.
func inked(c byte, col, row int) bool {
	g, ok := font[c]
	if !ok || row < 0 || row >= glyphH || col < 0 || col >= glyphW {
		return false
	}
	return g[row][col] == '#'
}
