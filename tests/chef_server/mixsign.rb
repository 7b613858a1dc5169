# Signs a request with Debian's Ruby mixlib-authentication (the second, independent signer of our tests).
# usage: ruby mixsign.rb KEY_FILE USER METHOD PATH PROTOCOL < body  -> the X-Ops-* headers as JSON
require "openssl"
require "time"
require "json"
require "mixlib/authentication/signedheaderauth"
key = OpenSSL::PKey::RSA.new(File.read(ARGV[0]))
args = { http_method: ARGV[2], path: ARGV[3], body: STDIN.read, timestamp: Time.now.utc.iso8601,
         user_id: ARGV[1], proto_version: ARGV[4], headers: { "X-Ops-Server-API-Version" => "1" } }
puts JSON.generate(Mixlib::Authentication::SignedHeaderAuth.signing_object(args).sign(key))
