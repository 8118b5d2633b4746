#! file: smtp-auth-report.csv: DisplayName,Address,SmtpAuthDisabled
#! file: smtp-auth-report.csv: Sean Smith,sean@contoso.com,False
#! expect: report written: 4 rows
$report = foreach ($mbx in Get-Mailbox -ResultSize Unlimited) {
    $cas = Get-CASMailbox -Identity $mbx.PrimarySmtpAddress
    [PSCustomObject]@{
        DisplayName      = $mbx.DisplayName
        Address          = $mbx.PrimarySmtpAddress
        SmtpAuthDisabled = $cas.SmtpClientAuthenticationDisabled
    }
}
$report | Export-Csv -Path smtp-auth-report.csv -NoTypeInformation
Write-Host ("report written: {0} rows" -f $report.Count)
