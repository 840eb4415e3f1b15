package password

import "testing"

func TestHashCheck(t *testing.T) {
	h, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if h2, _ := Hash("correct horse"); h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct hors": false, "": false} {
		if ok, err := Check(h, pw); err != nil || ok != want {
			t.Errorf("Check(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	if _, err := Check("$bcrypt$x", "x"); err == nil {
		t.Error("a foreign hash format was accepted")
	}
	if ok, _ := Check(Dummy, "not a real password"); !ok {
		t.Error("Dummy is not a valid hash")
	}
}
