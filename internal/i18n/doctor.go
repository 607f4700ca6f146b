package i18n

// doctor holds kpectl doctor's findings and actions, for the technician
// (doctor.*). A key names the check and the finding's code:
// doctor.<check>.<code>.message and doctor.<check>.<code>.action; an
// action that depends on the platform ends in it (.windows, .macos, ...).
// doctor.needs-*.message say why a check that depends on another was not
// run. Commands, flags and configuration keys in the texts (sudo systemctl
// ..., --token-file, sync.url) are typed as they are, in both languages.
var doctor = table{
	// The configuration (config).
	"doctor.config.invalid.message": {"Konfigurasi agen tidak dapat dimuat.", "The agent's configuration cannot be loaded."},
	"doctor.config.invalid.action": {
		"Perbaiki berkas konfigurasi sesuai pesan di atas (contoh lengkap: configs/agent.yaml), lalu jalankan ulang kpectl doctor. Pemeriksaan lain memakai nilai bawaan.",
		"Fix the configuration file as the detail says (full example: configs/agent.yaml), then run kpectl doctor again. The other checks use the defaults."},
	"doctor.config.defaults.message": {"Tidak ada berkas konfigurasi; nilai bawaan dipakai.", "No configuration file; the defaults apply."},
	"doctor.config.loaded.message":   {"Konfigurasi dimuat dari %s.", "Configuration loaded from %s."},
	"doctor.config.pseudonym-file.message": {
		"Konfigurasi dimuat dari %s, tetapi pseudonim KTP-el dihitung di PC ini dengan berkas kunci (ktpel.pseudonym: file), bukan di dalam SAM.",
		"Configuration loaded from %s, but the KTP-el pseudonyms are computed on this PC with a key file (ktpel.pseudonym: file), not inside the SAM."},
	"doctor.config.pseudonym-file.action": {
		"Siapa pun yang dapat membaca berkas kunci dapat mencocokkan NIK dengan catatan. Pasang SAM yang memuat kunci pseudonim, hapus ktpel.pseudonym: file dan sam.nik_key_file, lalu mulai ulang agen.",
		"Whoever reads the key file can test NIKs against the records. Use a SAM that holds the pseudonym key, remove ktpel.pseudonym: file and sam.nik_key_file, then restart the agent."},

	// The running agent (agent).
	"doctor.agent.start.windows": {
		"Jalankan agen sebagai Administrator: sc start kpe-agent (agar otomatis: sc config kpe-agent start= auto), lalu jalankan ulang kpectl doctor.",
		"Start the agent as Administrator: sc start kpe-agent (to start it automatically: sc config kpe-agent start= auto), then run kpectl doctor again."},
	"doctor.agent.start.systemd": {
		"Jalankan agen: sudo systemctl start kpe-agent (log: journalctl -u kpe-agent), lalu jalankan ulang kpectl doctor.",
		"Start the agent: sudo systemctl start kpe-agent (logs: journalctl -u kpe-agent), then run kpectl doctor again."},
	"doctor.agent.no-address.message":  {"Alamat API agen tidak valid.", "The agent's API address is not valid."},
	"doctor.agent.no-address.action":   {"Periksa api.listen di konfigurasi atau --agent.", "Check api.listen in the configuration, or --agent."},
	"doctor.agent.not-running.message": {"Agen tidak berjalan (%s).", "The agent is not running (%s)."},
	"doctor.agent.error.message":       {"Agen tidak menjawab dengan benar.", "The agent does not answer properly."},
	"doctor.agent.error.action": {
		"Mulai ulang agen (sudo systemctl restart kpe-agent; Windows: sc stop kpe-agent lalu sc start kpe-agent) dan periksa lognya.",
		"Restart the agent (sudo systemctl restart kpe-agent; Windows: sc stop kpe-agent then sc start kpe-agent) and read its log."},
	"doctor.agent.no-token.message": {
		"Agen berjalan, tetapi token API tidak terbaca: SAM dan outbox tidak dapat diperiksa lewat agen.",
		"The agent runs, but the API token cannot be read: the SAM and the outbox cannot be checked through the agent."},
	"doctor.agent.no-token.action": {
		"Jalankan kpectl doctor sebagai root (sudo kpectl doctor) atau beri --token-file BERKAS (bawaan %s).",
		"Run kpectl doctor as root (sudo kpectl doctor) or give --token-file FILE (default %s)."},
	"doctor.agent.token-rejected.message": {"Agen berjalan, tetapi menolak token API.", "The agent runs, but refuses the API token."},
	"doctor.agent.token-rejected.action": {
		"Pakai token agen ini: --token-file %s (token berubah saat dipasang ulang).",
		"Use this agent's token: --token-file %s (the token changes on reinstall)."},
	"doctor.agent.degraded.message": {"Agen berjalan dengan masalah: %s.", "The agent runs with problems: %s."},
	"doctor.agent.degraded.action":  {"Lihat temuan lain di bawah untuk tindakannya.", "See the other findings below for what to do."},
	"doctor.agent.running.message":  {"Agen berjalan.", "The agent is running."},

	// The PC/SC service (pcsc).
	"doctor.pcsc.start.windows": {
		"Jalankan layanan Smart Card (SCardSvr) sebagai Administrator: sc config SCardSvr start= auto lalu sc start SCardSvr. Windows menghentikan layanan ini bila tidak ada pembaca: pasang pembaca kartu dulu, lalu jalankan ulang kpectl doctor.",
		"Start the Smart Card service (SCardSvr) as Administrator: sc config SCardSvr start= auto, then sc start SCardSvr. Windows stops this service when no reader is plugged in: plug in the card reader first, then run kpectl doctor again."},
	"doctor.pcsc.start.macos": {
		"Pasang pembaca kartu: layanan kartu pintar macOS mulai saat pembaca terpasang. Lalu jalankan ulang kpectl doctor.",
		"Plug in the card reader: the macOS smart-card service starts when a reader is present. Then run kpectl doctor again."},
	"doctor.pcsc.start.pcscd": {
		"Jalankan layanan pcscd: sudo systemctl start pcscd (agar otomatis: sudo systemctl enable --now pcscd.socket), lalu jalankan ulang kpectl doctor.",
		"Start the pcscd service: sudo systemctl start pcscd (to start it automatically: sudo systemctl enable --now pcscd.socket), then run kpectl doctor again."},
	"doctor.pcsc.no-service.message": {"Layanan kartu pintar (%s) tidak berjalan.", "The smart-card service (%s) is not running."},
	"doctor.pcsc.error.message":      {"Layanan kartu pintar (%s) tidak dapat dipakai.", "The smart-card service (%s) cannot be used."},
	"doctor.pcsc.running.message":    {"Layanan kartu pintar (%s) berjalan.", "The smart-card service (%s) is running."},

	// A check that needs the PC/SC service (readers, sam) when it is not usable.
	"doctor.needs-pcsc.message": {"Tidak diperiksa: layanan kartu pintar tidak tersedia.", "Not checked: the smart-card service is not available."},

	// The card readers (readers).
	"doctor.readers.none.message": {"Tidak ada pembaca kartu terpasang.", "No card reader is connected."},
	"doctor.readers.none.action.windows": {
		"Pasang pembaca kartu ke port USB; periksa kabel USB (coba port lain) dan pastikan pembaca tampil di Device Manager (Smart card readers). Lalu jalankan ulang kpectl doctor.",
		"Plug the card reader into a USB port; check the USB cable (try another port) and that the reader shows in Device Manager (Smart card readers). Then run kpectl doctor again."},
	"doctor.readers.none.action.unix": {
		"Pasang pembaca kartu ke port USB; periksa kabel USB (coba port lain). Cek dengan pcsc_scan bahwa pembaca terlihat, lalu jalankan ulang kpectl doctor.",
		"Plug the card reader into a USB port; check the USB cable (try another port). Check with pcsc_scan that the reader shows, then run kpectl doctor again."},
	"doctor.readers.exclusive.message": {"Pembaca %s dipakai eksklusif oleh program lain.", "Reader %s is held exclusively by another program."},
	"doctor.readers.exclusive.action": {
		"Tutup program lain yang memakai pembaca itu (aplikasi kartu lain, pcsc_scan, browser dengan modul kartu), lalu jalankan ulang kpectl doctor.",
		"Close the other program using that reader (another card application, pcsc_scan, a browser with a card module), then run kpectl doctor again."},
	"doctor.readers.mute-card.message": {"Kartu di pembaca %s tidak menjawab.", "The card in reader %s does not answer."},
	"doctor.readers.mute-card.action": {
		"Cabut dan masukkan kembali kartu itu (chip menghadap benar); bila berulang, kartu atau pembaca rusak.",
		"Take that card out and insert it again (chip facing the right way); if it repeats, the card or the reader is faulty."},
	"doctor.readers.present.message": {"%d pembaca kartu terpasang.", "%d card reader(s) connected."},

	// The SAM (sam).
	"doctor.sam.missing.action": {
		"Masukkan SAM ke slot SAM pembaca, lalu jalankan ulang kpectl doctor.",
		"Insert the SAM into the reader's SAM slot, then run kpectl doctor again."},
	"doctor.sam.blocked.action": {
		"SAM terblokir: hubungi penerbit SAM untuk penggantian. Jangan mencoba mengaktifkannya lagi.",
		"The SAM is blocked: contact the SAM issuer for a replacement. Do not try to activate it again."},
	"doctor.sam.agent-holds-sam.message": {"Tidak diperiksa: SAM dipegang agen yang sedang berjalan.", "Not checked: the running agent holds the SAM."},
	"doctor.sam.agent-holds-sam.action": {
		"Jalankan kpectl doctor sebagai root (sudo) agar SAM diperiksa lewat agen.",
		"Run kpectl doctor as root (sudo) to check the SAM through the agent."},
	"doctor.sam.not-probed.message": {
		"SAM tidak dapat diperiksa: pembaca dipakai program lain atau tidak menjawab.",
		"The SAM could not be checked: a reader is held by another program or did not answer."},
	"doctor.sam.not-probed.action": {
		"Tutup program lain yang memakai pembaca kartu (mis. aplikasi sidik jari vendor), cabut-pasang pembaca bila perlu, lalu jalankan ulang kpectl doctor.",
		"Close any other program using the card reader (e.g. a vendor's fingerprint application), replug the reader if needed, then run kpectl doctor again."},
	"doctor.sam.missing.message": {"SAM tidak ditemukan di pembaca mana pun.", "No SAM found in any reader."},
	"doctor.sam.active.message":  {"SAM aktif (penghitung tanda tangan %d).", "The SAM is active (signature counter %d)."},
	"doctor.sam.blocked.message": {"SAM terblokir.", "The SAM is blocked."},
	"doctor.sam.inactive.message": {
		"SAM belum diaktifkan untuk terminal ini (sisa percobaan aktivasi: %d).",
		"The SAM is not activated for this terminal (activation tries left: %d)."},
	"doctor.sam.inactive.action.no-code-file": {
		"Isi sam.activation_code_file di konfigurasi agen dengan berkas kode aktivasi dari penerbit (mode 600); agen mengaktifkan SAM saat mulai. Lalu mulai ulang agen.",
		"Set sam.activation_code_file in the agent's configuration to the file holding the issuer's activation code (mode 600); the agent activates the SAM when it starts. Then restart the agent."},
	"doctor.sam.inactive.action.start-agent": {
		"Jalankan agen: agen mengaktifkan SAM saat mulai dengan kode di %s.",
		"Start the agent: it activates the SAM when it starts, with the code in %s."},
	"doctor.sam.inactive.action.code-refused": {
		"Agen tidak dapat mengaktifkan SAM dengan kode di %s: periksa berkas itu dan log agen. Kode yang salah mengurangi sisa percobaan; jangan mencoba berulang-ulang.",
		"The agent could not activate the SAM with the code in %s: check that file and the agent's log. A wrong code costs a try; do not try again and again."},
	"doctor.sam.unknown-state.message": {"Status SAM tidak dikenal: %s.", "Unknown SAM state: %s."},
	"doctor.sam.unknown-state.action": {
		"Jalankan ulang kpectl doctor; bila berulang, hubungi penerbit SAM.",
		"Run kpectl doctor again; if it repeats, contact the SAM issuer."},

	// The link to the back office (backoffice).
	"doctor.backoffice.tls-config.message": {
		"Berkas sertifikat untuk koneksi ke kantor pusat tidak dapat dipakai.",
		"The certificate files for the back-office connection cannot be used."},
	"doctor.backoffice.tls-config.action": {
		"Periksa sync.client_cert, sync.client_key dan sync.ca di konfigurasi agen: berkasnya ada, berformat PEM dan saling cocok. Bila hilang, pasang ulang sertifikat melalui penerbit/pemasang.",
		"Check sync.client_cert, sync.client_key and sync.ca in the agent's configuration: the files exist, are PEM and belong together. If they are lost, reinstall the certificate through the issuer/installer."},
	"doctor.backoffice.network.action": {
		"Periksa koneksi jaringan terminal (kabel/Wi-Fi, modem), firewall, dan proxy: bila jaringan kantor memakai proxy, atur HTTPS_PROXY untuk agen. Periksa juga sync.url. Catatan tetap tersimpan dan dikirim saat koneksi pulih.",
		"Check the terminal's network connection (cable/Wi-Fi, modem), the firewall and the proxy: if the office network uses a proxy, set HTTPS_PROXY for the agent. Check sync.url too. Records stay stored and are sent when the link is back."},
	"doctor.backoffice.dns.message": {
		"Nama server kantor pusat (%s) tidak dapat ditemukan (DNS).",
		"The back office's name (%s) cannot be resolved (DNS)."},
	"doctor.backoffice.dns.action": {
		"Periksa koneksi jaringan dan pengaturan DNS terminal (coba buka situs lain), dan ejaan sync.url. Bila jaringan memakai proxy, atur HTTPS_PROXY untuk agen.",
		"Check the terminal's network connection and DNS settings (try another site) and the spelling of sync.url. If the network uses a proxy, set HTTPS_PROXY for the agent."},
	"doctor.backoffice.refused.message":     {"Kantor pusat (%s) menolak koneksi.", "The back office (%s) refused the connection."},
	"doctor.backoffice.unreachable.message": {"Kantor pusat (%s) tidak dapat dihubungi.", "The back office (%s) cannot be reached."},
	"doctor.backoffice.proxy.message": {
		"Proxy %s tidak dapat dipakai untuk menghubungi kantor pusat.",
		"The proxy %s cannot be used to reach the back office."},
	"doctor.backoffice.proxy.action": {
		"Periksa HTTPS_PROXY (alamat, port, akun proxy) atau hapus bila jaringan tidak memakai proxy.",
		"Check HTTPS_PROXY (address, port, proxy account), or unset it if the network has no proxy."},
	"doctor.backoffice.client-key-unreadable.asked.message": {
		"Kantor pusat meminta sertifikat klien, tetapi kunci terminal tidak terbaca oleh pengguna ini.",
		"The back office asks for the client certificate, but this user cannot read the terminal's key."},
	"doctor.backoffice.client-key-unreadable.action": {
		"Jalankan kpectl doctor sebagai root (sudo) untuk memeriksa koneksi lengkap.",
		"Run kpectl doctor as root (sudo) to check the full connection."},
	"doctor.backoffice.tls-rejected.message": {
		"Kantor pusat menolak sertifikat klien terminal ini.",
		"The back office rejected this terminal's client certificate."},
	"doctor.backoffice.tls-rejected.action": {
		"Sertifikat klien tidak cocok atau kedaluwarsa: perbarui sertifikat terminal melalui penerbit/pemasang (installer), lalu mulai ulang agen.",
		"The client certificate does not match or has expired: renew the terminal's certificate through the issuer/installer, then restart the agent."},
	"doctor.backoffice.tls-expired.message": {
		"Sertifikat server kantor pusat kedaluwarsa atau belum berlaku.",
		"The back office's server certificate has expired or is not yet valid."},
	"doctor.backoffice.tls-expired.action": {
		"Periksa jam terminal (temuan clock); bila jam benar, hubungi kantor pusat untuk memperbarui sertifikat servernya.",
		"Check the terminal's clock (the clock finding); if it is right, ask the back office to renew its server certificate."},
	"doctor.backoffice.tls-mismatch.message": {
		"Sertifikat tidak cocok: sertifikat server kantor pusat tidak dipercaya dengan CA di sync.ca.",
		"Certificate mismatch: the back office's server certificate is not trusted with the CA in sync.ca."},
	"doctor.backoffice.tls-mismatch.action": {
		"Periksa sync.url (alamat server yang benar, https) dan sync.ca (berkas CA dari kantor pusat/pemasang). Jaringan yang menyadap HTTPS (proxy/antivirus) juga menyebabkan ini: kecualikan alamat kantor pusat.",
		"Check sync.url (the right server, https) and sync.ca (the CA file from the back office/installer). A network that intercepts HTTPS (proxy/antivirus) causes this too: exempt the back office's address."},
	"doctor.backoffice.reachable.message": {"Kantor pusat dapat dihubungi (%s).", "The back office is reachable (%s)."},
	"doctor.backoffice.client-key-unreadable.reachable.message": {
		"Kantor pusat dapat dihubungi, tetapi sertifikat klien tidak diuji: kunci terminal tidak terbaca oleh pengguna ini.",
		"The back office is reachable, but the client certificate was not tested: this user cannot read the terminal's key."},
	"doctor.backoffice.http-unauthorized.message": {"Kantor pusat menolak terminal ini (HTTP %d).", "The back office refuses this terminal (HTTP %d)."},
	"doctor.backoffice.http-unauthorized.action": {
		"Pastikan terminal terdaftar di kantor pusat dan sertifikat kliennya (sync.client_cert) benar; hubungi kantor pusat.",
		"Make sure the terminal is registered at the back office and its client certificate (sync.client_cert) is right; contact the back office."},
	"doctor.backoffice.http-error.message": {"Kantor pusat menjawab dengan kesalahan HTTP %d.", "The back office answers with HTTP error %d."},
	"doctor.backoffice.http-error.action": {
		"Periksa sync.url (alamat dan path); bila benar, kantor pusat sedang bermasalah: coba lagi nanti dan hubungi kantor pusat bila berlanjut. Catatan tetap tersimpan.",
		"Check sync.url (address and path); if it is right, the back office has a problem: try again later and contact it if it persists. Records stay stored."},

	// The back-office checks (backoffice, clock, server-cert) when syncing is not configured.
	"doctor.needs-sync-url.message": {
		"Tidak diperiksa: sinkronisasi ke kantor pusat tidak dikonfigurasi (sync.url kosong).",
		"Not checked: syncing to the back office is not configured (sync.url is empty)."},

	// The checks that need a connection to the back office (clock, server-cert) when there is none.
	"doctor.needs-connection.message": {"Tidak diperiksa: tidak ada koneksi ke kantor pusat.", "Not checked: no connection to the back office."},

	// The terminal's clock against the back office's (clock).
	"doctor.clock.no-date.message": {"Tidak diperiksa: jam kantor pusat tidak diketahui.", "Not checked: the back office's time is unknown."},
	"doctor.clock.synced.message": {
		"Jam terminal sesuai dengan kantor pusat (selisih %v).",
		"The terminal's clock agrees with the back office (skew %v)."},
	"doctor.clock.skewed.message": {
		"Jam terminal berbeda %v dari kantor pusat; waktu pada catatan akan salah.",
		"The terminal's clock is %v off the back office's; records will carry a wrong time."},
	"doctor.clock.skewed.action.windows": {
		"Aktifkan sinkronisasi waktu: jalankan sebagai Administrator w32tm /resync (layanan Windows Time harus berjalan: sc start w32time), dan periksa zona waktu.",
		"Turn on time synchronisation: as Administrator run w32tm /resync (the Windows Time service must run: sc start w32time), and check the time zone."},
	"doctor.clock.skewed.action.ntp": {
		"Aktifkan sinkronisasi waktu (NTP): sudo timedatectl set-ntp true, dan periksa zona waktu (timedatectl).",
		"Turn on time synchronisation (NTP): sudo timedatectl set-ntp true, and check the time zone (timedatectl)."},

	// A certificate's validity period, for client-cert and server-cert: the
	// finding's message is the label of its certificate around this text.
	"doctor.cert.expired.message": {"Sertifikat kedaluwarsa pada %s.", "The certificate expired on %s."},
	"doctor.cert.not-yet-valid.message": {
		"Sertifikat belum berlaku (mulai %s): periksa jam terminal.",
		"The certificate is not valid yet (from %s): check the terminal's clock."},
	"doctor.cert.not-yet-valid.action": {
		"Periksa jam dan zona waktu terminal (temuan clock).",
		"Check the terminal's clock and time zone (the clock finding)."},
	"doctor.cert.expires-soon.message": {"Sertifikat kedaluwarsa dalam %d hari (%s).", "The certificate expires in %d days (%s)."},
	"doctor.cert.valid.message":        {"Sertifikat berlaku sampai %s.", "The certificate is valid until %s."},

	// The terminal's client certificate (client-cert).
	"doctor.client-cert.not-configured.message": {
		"Tidak diperiksa: tidak ada sertifikat klien (sync.client_cert).",
		"Not checked: no client certificate (sync.client_cert)."},
	"doctor.client-cert.unreadable.message": {"Sertifikat klien terminal tidak dapat dibaca.", "The terminal's client certificate cannot be read."},
	"doctor.client-cert.unreadable.action": {
		"Periksa sync.client_cert (berkas PEM sertifikat terminal); bila hilang, pasang ulang sertifikat melalui penerbit/pemasang.",
		"Check sync.client_cert (the terminal's PEM certificate file); if it is lost, reinstall the certificate through the issuer/installer."},
	"doctor.client-cert.renew.action": {
		"Perbarui sertifikat klien terminal melalui penerbit/pemasang (installer), lalu mulai ulang agen.",
		"Renew the terminal's client certificate through the issuer/installer, then restart the agent."},
	"doctor.client-cert.label": {"Klien: %s", "Client: %s"},

	// The back office's server certificate (server-cert).
	"doctor.server-cert.no-certificate.message": {
		"Tidak diperiksa: sertifikat server kantor pusat tidak diterima.",
		"Not checked: no server certificate was received from the back office."},
	"doctor.server-cert.renew.action": {
		"Hubungi kantor pusat: sertifikat server mereka harus diperbarui.",
		"Contact the back office: its server certificate must be renewed."},
	"doctor.server-cert.label": {"Server: %s", "Server: %s"},

	// Free disk space at the outbox (disk).
	"doctor.disk.unknown.message": {"Tidak diperiksa: ruang disk tidak dapat diukur.", "Not checked: free disk space cannot be measured."},
	"doctor.disk.free-up.action": {
		"Kosongkan ruang disk di %s (hapus berkas yang tidak perlu, kosongkan Recycle Bin/tempat sampah, log lama). Outbox membutuhkan ruang untuk mencatat transaksi.",
		"Free disk space at %s (delete files not needed, empty the recycle bin, old logs). The outbox needs room to record transactions."},
	"doctor.disk.full.message": {
		"Ruang disk hampir habis: sisa %s. Transaksi baru dapat gagal dicatat.",
		"The disk is almost full: %s left. New transactions may fail to be recorded."},
	"doctor.disk.low.message":    {"Ruang disk tinggal sedikit: sisa %s (%.1f %%).", "Disk space is low: %s left (%.1f %%)."},
	"doctor.disk.enough.message": {"Ruang disk cukup: sisa %s.", "Enough disk space: %s free."},

	// The outbox (outbox, outbox-dead, outbox-damaged).
	"doctor.outbox.none-yet.message": {
		"Outbox belum ada (dibuat agen saat pertama berjalan).",
		"No outbox yet (the agent creates it when it first runs)."},
	"doctor.outbox.damaged.message": {"Berkas outbox rusak.", "The outbox file is damaged."},
	"doctor.outbox.damaged.action": {
		"Saat mulai, agen memindahkan berkas rusak dan membuat outbox baru: mulai agen. Lalu pulihkan catatannya: kpectl queue salvage %s.corrupt-… --out BARU.db (agen dihentikan), dan laporkan ke kantor pusat.",
		"When it starts, the agent moves the damaged file aside and starts a new outbox: start the agent. Then recover the records: kpectl queue salvage %s.corrupt-… --out NEW.db (agent stopped), and tell the back office."},
	"doctor.outbox.unreadable.message": {"Outbox tidak dapat dibaca.", "The outbox cannot be read."},
	"doctor.outbox.unreadable.action": {
		"Jalankan kpectl doctor sebagai root (sudo), atau periksa outbox.path di konfigurasi.",
		"Run kpectl doctor as root (sudo), or check outbox.path in the configuration."},
	"doctor.outbox.agent-holds-outbox.message": {
		"Tidak diperiksa: outbox dipegang agen yang sedang berjalan.",
		"Not checked: the running agent holds the outbox."},
	"doctor.outbox.agent-holds-outbox.action": {
		"Jalankan kpectl doctor sebagai root (sudo) agar outbox diperiksa lewat agen.",
		"Run kpectl doctor as root (sudo) to check the outbox through the agent."},
	"doctor.outbox.full.message": {
		"Outbox PENUH: terminal menolak catatan baru sampai tersinkron ke kantor pusat.",
		"The outbox is FULL: the terminal refuses new records until they are synced to the back office."},
	"doctor.outbox.full.action": {
		"Segera pulihkan koneksi ke kantor pusat (temuan backoffice), lalu kirim: kpectl sync now.",
		"Restore the connection to the back office now (the backoffice finding), then send: kpectl sync now."},
	"doctor.outbox.filling.message": {
		"Outbox terisi %d %%: catatan menumpuk karena belum terkirim ke kantor pusat.",
		"The outbox is %d %% full: records pile up because they are not sent to the back office."},
	"doctor.outbox.filling.action": {
		"Periksa koneksi ke kantor pusat (temuan backoffice), lalu kirim: kpectl sync now.",
		"Check the connection to the back office (the backoffice finding), then send: kpectl sync now."},
	"doctor.outbox.healthy.message": {"Outbox sehat: %d catatan menunggu dikirim.", "The outbox is healthy: %d record(s) waiting to be sent."},
	"doctor.outbox.dead.message":    {"%d catatan ditolak kantor pusat (dead).", "%d record(s) were rejected by the back office (dead)."},
	"doctor.outbox.dead.action": {
		"Lihat alasannya: kpectl queue list --state dead. Setelah penyebabnya diperbaiki (mis. terminal didaftarkan), kirim ulang: hentikan agen, kpectl queue retry --all.",
		"See why: kpectl queue list --state dead. Once the cause is fixed (e.g. the terminal is registered), send them again: stop the agent, kpectl queue retry --all."},
	"doctor.outbox.moved-aside.message": {
		"Berkas outbox rusak telah dipindahkan (%d); catatannya belum dipulihkan.",
		"Damaged outbox file(s) were moved aside (%d); their records are not recovered yet."},
	"doctor.outbox.moved-aside.action": {
		"Pulihkan catatannya: kpectl queue salvage %s --out BARU.db (agen dihentikan), lalu laporkan ke kantor pusat.",
		"Recover the records: kpectl queue salvage %s --out NEW.db (agent stopped), then tell the back office."},

	// A check that did not end within the run's budget (any check).
	"doctor.timeout.message": {"Pemeriksaan tidak selesai tepat waktu.", "The check did not finish in time."},
	"doctor.timeout.action": {
		"Jalankan ulang kpectl doctor; bila berulang, laporkan ke teknisi tingkat berikutnya.",
		"Run kpectl doctor again; if it repeats, escalate to second-level support."},
}
